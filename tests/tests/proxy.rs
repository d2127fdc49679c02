//! The chaos proxy itself: passes bytes, refuses, stalls, and cuts open connections on demand.

use std::time::Duration;

use system_tests::proxy::{ChaosProxy, ProxyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(message).await?;
    let mut buf = vec![0u8; message.len()];
    tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    Ok(buf)
}

#[tokio::test]
async fn passes_cuts_refuses_and_stalls() {
    let proxy = ChaosProxy::start(echo_server().await, ProxyMode::Pass, 1).await.expect("proxy");
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(round_trip(&mut stream, b"hello").await.expect("echo"), b"hello");

    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(round_trip(&mut stream, b"again").await.is_err(), "a cut connection carries nothing");

    proxy.set_mode(ProxyMode::Refuse);
    let mut refused = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert!(round_trip(&mut refused, b"x").await.is_err());

    proxy.set_mode(ProxyMode::Stall);
    let mut stalled = TcpStream::connect(proxy.addr()).await.expect("connect");
    let err = round_trip(&mut stalled, b"x").await.expect_err("stalled");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);

    proxy.set_mode(ProxyMode::Pass);
    let mut fresh = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(round_trip(&mut fresh, b"back").await.expect("echo"), b"back");
    assert_eq!(proxy.connections(), 4);
}

#[tokio::test]
async fn chaos_mode_cuts_some_connections() {
    let proxy = ChaosProxy::start(
        echo_server().await,
        ProxyMode::Chaos { cut_per_mille: 300, stall_per_mille: 0, max_stall_ms: 0 },
        42,
    )
    .await
    .expect("proxy");
    let mut failures = 0;
    for _ in 0..30 {
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        if round_trip(&mut stream, b"ping").await.is_err() {
            failures += 1;
        }
    }
    assert!(failures > 0 && failures < 30, "{failures} of 30 cut");
    assert_eq!(proxy.cuts(), failures);
}
