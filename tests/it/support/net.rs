//! Ports and plain HTTP/1.1 over a socket, for servers the tests start as processes.

/// A port that was free a moment ago. Another process can take it before the server it is
/// meant for binds it: only for servers that cannot listen on port 0 and report the port
/// they got (Dovecot, chromedriver, a port that must stay closed), and then with a retry
/// on a new port when binding fails.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One HTTP/1.1 request on a connection of its own (`Connection: close`) to `ip:port`:
/// the status, the head (lowercase) and the body; `None` when nothing answers.
pub async fn http_request(
    ip: std::net::IpAddr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n");
    if !body.is_empty() || method != "GET" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}
