//! The application built and run inside the test process (`App::build`, then `App::run`
//! until its token is cancelled), on port 0: no binary, no port picked beforehand.

use std::time::Duration;

use maildesk::app::App;

use crate::support::{http_request, TestEnv};

#[tokio::test]
async fn the_application_serves_in_process_on_port_0_and_stops_when_cancelled() {
    let env = TestEnv::new().await;
    let mut config = env.config.clone();
    config.web.listen = "127.0.0.1:0".into();
    let app = App::build(config).await.expect("the application builds");
    let address = app.web_address();
    assert_ne!(address.port(), 0, "the bound port, not the configured 0");
    let shutdown = app.shutdown_token();
    let running = tokio::spawn(app.run());

    let answer = http_request(address.ip(), address.port(), "GET", "/healthz", &[], "").await;
    let (status, _, body) = answer.expect("/healthz answers");
    assert_eq!((status, body.trim()), (200, "ok"));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("run returns once cancelled")
        .expect("run ends without a panic");
    let after = http_request(address.ip(), address.port(), "GET", "/healthz", &[], "").await;
    assert!(after.is_none(), "nothing listens after the shutdown");
}
