//! WebSocket fuzzing over real sockets: random, binary, oversized and
//! malformed client messages, raw garbage after the handshake, and floods.
//! Whatever a client sends, the server answers only with frames of the
//! wire contract and ends the connection, if it does, with a close frame
//! carrying a documented code; afterwards a well-behaved client is served
//! and `/health` is 200.
#![cfg(all(feature = "axum", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertKit, Principal};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::ws::hub::{WsConfig, WsHub};
use alertkit_transport::{JwtAuthenticator, LocalBroadcaster, http};
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SECRET: &[u8] = b"ws-fuzz-secret-ws-fuzz-secret-ws-fuzz!";

/// Frame types the server may send (docs/wire.md).
const FRAME_TYPES: &[&str] = &[
    "hello",
    "alert",
    "resumed",
    "receipt",
    "unread",
    "broadcast",
    "error",
    "pong",
];

/// Close codes the server may send (docs/wire.md), plus 1002 for a
/// broken frame and 1000 echoing the client's own close.
const CLOSE_CODES: &[u16] = &[1000, 1001, 1002, 1007, 1008, 1009, 4001];

struct Server {
    addr: String,
    auth: Arc<JwtAuthenticator>,
    _kit: AlertKit,
}

async fn serve() -> Server {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hub = WsHub::new(kit.clone(), WsConfig::default());
    let app = http::router_with_hub(hub, auth.clone(), Default::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        auth,
        _kit: kit,
    }
}

/// One thing a client sends.
#[derive(Debug, Clone)]
enum Send {
    Text(String),
    Json(Value),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Oversized(usize),
    Flood(usize),
    /// Raw bytes straight onto the TCP stream: broken frames.
    Raw(Vec<u8>),
    Close,
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("18446744073709551616")),
        Just(json!("-1")),
        Just(json!(u64::MAX)),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn client_message() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("resume"),
        Just("mark_read"),
        Just("dismiss"),
        Just("ping"),
        Just("auth"),
        Just("subscribe"),
        Just(""),
    ];
    (kind, any_json(), any_json(), any_json()).prop_map(
        |(k, cursor, id, token)| json!({"type": k, "cursor": cursor, "id": id, "token": token}),
    )
}

fn send() -> impl Strategy<Value = Send> {
    prop_oneof![
        4 => ".{0,200}".prop_map(Send::Text),
        6 => client_message().prop_map(Send::Json),
        2 => any_json().prop_map(Send::Json),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Send::Binary),
        1 => prop::collection::vec(any::<u8>(), 0..100).prop_map(Send::Ping),
        1 => (1usize..2048).prop_map(Send::Oversized),
        1 => (60usize..200).prop_map(Send::Flood),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Send::Raw),
        1 => Just(Send::Close),
    ]
}

/// How the connection authenticates.
#[derive(Debug, Clone)]
enum Auth {
    Query,
    FirstMessage,
    BadToken,
}

/// Sends one case's messages and checks everything the server answers.
async fn run_case(srv: &Server, auth: Auth, sends: Vec<Send>) {
    let token = srv
        .auth
        .issue(&Principal::user("fuzz"), Duration::from_secs(600))
        .unwrap();
    let url = match auth {
        Auth::Query => format!("ws://{}/ws?token={token}", srv.addr),
        Auth::FirstMessage | Auth::BadToken => format!("ws://{}/ws", srv.addr),
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    match auth {
        Auth::Query => {}
        Auth::FirstMessage => {
            let m = json!({"type": "auth", "token": token}).to_string();
            ws.send(Message::Text(m.into())).await.unwrap();
        }
        Auth::BadToken => {
            let m = json!({"type": "auth", "token": "not.a.token"}).to_string();
            ws.send(Message::Text(m.into())).await.unwrap();
        }
    }
    let mut closed_by_us = false;
    let mut garbled = false;
    for s in sends {
        let sent = match s {
            Send::Text(t) => ws.send(Message::Text(t.into())).await,
            Send::Json(v) => ws.send(Message::Text(v.to_string().into())).await,
            Send::Binary(b) => ws.send(Message::Binary(b.into())).await,
            Send::Ping(p) => ws.send(Message::Ping(p.into())).await,
            Send::Oversized(extra) => {
                let big = "x".repeat(64 * 1024 + extra);
                ws.send(Message::Text(big.into())).await
            }
            Send::Flood(n) => {
                let mut r = Ok(());
                for _ in 0..n {
                    r = ws
                        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
                        .await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Send::Raw(bytes) => {
                garbled = true;
                let stream = match ws.get_mut() {
                    tokio_tungstenite::MaybeTlsStream::Plain(s) => s,
                    _ => unreachable!("plain ws"),
                };
                stream.write_all(&bytes).await.map_err(Into::into)
            }
            Send::Close => {
                closed_by_us = true;
                ws.close(None).await
            }
        };
        if sent.is_err() || closed_by_us {
            break;
        }
    }
    // Read what the server says until it closes or goes quiet.
    loop {
        match tokio::time::timeout(Duration::from_millis(700), ws.next()).await {
            Err(_) => return, // quiet, still open: fine
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("a frame that is not JSON ({e}): {t}"));
                let ty = v["type"].as_str().unwrap_or_default();
                assert!(FRAME_TYPES.contains(&ty), "an undocumented frame: {v}");
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                if let Some(f) = frame {
                    let code = u16::from(f.code);
                    assert!(
                        CLOSE_CODES.contains(&code),
                        "an undocumented close code {code}"
                    );
                }
                return;
            }
            Ok(Some(Ok(Message::Binary(b)))) => panic!("a binary frame from the server: {b:?}"),
            Ok(Some(Ok(_))) => {}
            // After garbage, the client's own codec may refuse what
            // follows; a connection we closed may end without more.
            // Otherwise the server must say why it ends a connection.
            Ok(Some(Err(e))) => {
                assert!(
                    garbled || closed_by_us,
                    "the connection broke without a close frame: {e}"
                );
                return;
            }
            Ok(None) => {
                assert!(
                    garbled || closed_by_us,
                    "the connection ended without a close frame"
                );
                return;
            }
        }
    }
}

/// A well-behaved client is served, and `/health` is 200.
async fn still_healthy(srv: &Server) {
    let token = srv
        .auth
        .issue(&Principal::user("polite"), Duration::from_secs(600))
        .unwrap();
    let (mut ws, _): (Ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", srv.addr))
            .await
            .unwrap();
    let mut saw = Vec::new();
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    while saw.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                saw.push(v["type"].as_str().unwrap_or_default().to_owned());
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("a polite client was not served: {other:?}"),
        }
    }
    assert_eq!(saw, ["hello", "pong"]);
    let health = reqwest::get(format!("http://{}/health", srv.addr))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn whatever_a_client_sends_the_server_answers_by_the_contract(
        auth in prop_oneof![
            6 => Just(Auth::Query),
            2 => Just(Auth::FirstMessage),
            1 => Just(Auth::BadToken),
        ],
        sends in prop::collection::vec(send(), 1..12),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let srv = serve().await;
            run_case(&srv, auth, sends).await;
            still_healthy(&srv).await;
        });
    }
}
