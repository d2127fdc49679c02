//! What an operator needs to let an agent onto the MQTT broker: its user name and password (the password is derived
//! from the agent's token, see [`protocol::signed`], so central can say it again later from the hash it stores), the
//! command that adds them to Mosquitto's password file, and the agent's configuration.

use protocol::{AgentId, AgentKeys, SiteId};

/// The instructions, for `create-agent` and `mqtt-login`.
pub fn broker_login(agent: &AgentId, site: &SiteId, keys: &AgentKeys) -> String {
    let password = keys.broker_password();
    format!(
        "MQTT broker login for agent {agent} (site {site}):\n\
         \x20 username: {agent}\n\
         \x20 password: {password}\n\
         Add it to the broker's password file (see configs/mosquitto/):\n\
         \x20 mosquitto_passwd -b /etc/mosquitto/attendance.passwd {agent} {password}\n\
         The ACL patterns there let it publish only .../{site}/{agent}/punches and .../status and read only its own\n\
         acks and commands. The agent derives the same password from its token; its edge-agent.toml needs:\n\
         \x20 [agent]\n\
         \x20 id = \"{agent}\"\n\
         \x20 site = \"{site}\"\n\
         \x20 [central]\n\
         \x20 transport = \"mqtt\"\n\
         \x20 url = \"mqtts://broker.example.com:8883\"\n\
         \x20 token_file = \"/etc/edge-agent/token\"    # the agent's token, agt_{agent}_...\n\
         \x20 ca_file = \"/etc/edge-agent/ca.pem\"      # the broker's CA\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_is_the_one_the_agent_derives() {
        let token = "agt_gate-1_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let (agent, keys) = AgentKeys::from_token(token).unwrap();
        let text = broker_login(&agent, &"plant-1".parse().unwrap(), &keys);
        assert!(text.contains(&format!("password: {}", keys.broker_password())), "{text}");
        assert!(text.contains(&format!(
            "mosquitto_passwd -b /etc/mosquitto/attendance.passwd gate-1 {}",
            keys.broker_password()
        )));
        assert!(!text.contains("00112233445566778899aabbccddeeff"), "the token's secret is not in the text");
    }
}
