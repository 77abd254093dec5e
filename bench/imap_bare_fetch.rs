//! Part of `bench/imap`: the bare client-library baseline. Logs in with async-imap (the
//! library maildesk uses), selects INBOX and UID FETCHes every message's body, storing
//! nothing. Prints `messages bytes seconds`.
//!
//! Usage: imap-bare-fetch HOST PORT USER PASSWORD

use std::time::Instant;

use futures_util::StreamExt;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, user, password] = args.as_slice() else {
        eprintln!("usage: imap-bare-fetch HOST PORT USER PASSWORD");
        std::process::exit(64);
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port.parse::<u16>().expect("port")))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting");
    let mut session = client
        .login(user, password)
        .await
        .map_err(|(e, _)| e)
        .expect("login");
    session.select("INBOX").await.expect("select");
    let start = Instant::now();
    let (mut messages, mut bytes) = (0u64, 0u64);
    {
        let mut stream = session
            .uid_fetch("1:*", "(UID BODY.PEEK[])")
            .await
            .expect("fetch");
        while let Some(fetch) = stream.next().await {
            let fetch = fetch.expect("fetch response");
            bytes += fetch.body().map_or(0, |b| b.len() as u64);
            messages += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let _ = session.logout().await;
    println!("{messages} {bytes} {seconds}");
}
