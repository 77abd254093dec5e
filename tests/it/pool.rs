//! The pool hands a connection back without a round trip (vendor/README.md, the patch
//! `sqlx-core-no-return-ping.patch`): upstream sqlx pings every released connection. A
//! counting relay sits between the store and PostgreSQL; many acquire/release rounds
//! must send the server (almost) nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{is_postgres, TestEnv};
use maildesk::store::Store;

/// Forwards TCP connections to `upstream`, counting the bytes clients send.
async fn counting_relay(upstream: String) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                    counter.fetch_add(n, Ordering::SeqCst);
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    (address, sent)
}

#[tokio::test]
async fn releasing_a_pooled_connection_sends_the_server_nothing() {
    if !is_postgres() {
        return; // SQLite has no wire to count.
    }
    let env = TestEnv::new().await;
    env.store().await;
    let mut url = url::Url::parse(&env.database_url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let (relay, sent) = counting_relay(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(relay.port())).unwrap();
    // One connection: each acquire waits until the previous release has finished.
    let store = Store::connect(url.as_str(), 1).await.unwrap();
    store.ping().await.unwrap();
    drop(store.acquire().await.unwrap());

    const ROUNDS: usize = 50;
    let before = sent.load(Ordering::SeqCst);
    for _ in 0..ROUNDS {
        drop(store.acquire().await.unwrap());
    }
    drop(store.acquire().await.unwrap());
    let grew = sent.load(Ordering::SeqCst) - before;
    // A ping is a 5-byte Sync message. The pool pings a connection idle over a second
    // before handing it out, which a stalled machine may cause now and then; a ping on
    // every release would send at least 5 * ROUNDS.
    assert!(
        grew < 5 * ROUNDS / 2,
        "{grew} bytes sent over {ROUNDS} acquire/release rounds: released connections are pinged again (vendor/sqlx-core-no-return-ping.patch lost?)"
    );
}
