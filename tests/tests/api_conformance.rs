//! The admin API against its own OpenAPI document, checked by schemathesis (a tester we did not write) on both
//! backends: every operation, generated valid and invalid inputs, and four checks — no 5xx, every status documented,
//! every body matching its schema, every content type documented. A short run here (`SCHEMATHESIS_EXAMPLES`, 25
//! per operation by default); a long one by hand with a larger number.

use std::process::Command;

use system_tests::admin::{AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(every_operation_conforms_to_the_document);

async fn every_operation_conforms_to_the_document(backend: Backend) {
    let st = system_tests::schemathesis::binary().expect("schemathesis");
    let f = AdminFixture::new(backend).await.expect("fixture");
    let Auth::Bearer(token) = f.token("root").await.expect("root token") else { panic!("a bearer token") };
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let report = tempfile::tempdir().expect("tempdir");
    let output = Command::new(&st)
        .arg("run")
        .arg(format!("{}/api/openapi.json", f.central.url))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        ])
        .args(["--max-examples", &examples, "--seed", "20261205", "--workers", "2", "--no-color"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--generation-database", "none", "--request-timeout", "20"])
        // Revoking tokens or logging out would end this run's own authentication; both are tested elsewhere.
        .args(["--exclude-operation-id", "revoke_token", "--exclude-operation-id", "logout"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--report-dir", &report.path().to_string_lossy()])
        .output()
        .expect("running schemathesis");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("{printed}");
    assert!(output.status.success(), "schemathesis found failures on {backend:?} (output above)");
    assert!(printed.contains("passed"), "schemathesis ran no test case: {printed}");
    f.cleanup().await;
}
