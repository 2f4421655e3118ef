//! A small HTTP proxy in front of moto that answers chosen calls with injected errors (a
//! throttle, a 5xx, an AccessDenied) and passes every other call through, recording each
//! call's operation (`X-Amz-Target`) and body: the faults moto never produces, tested over
//! the SDK's real wire path. Used by the DynamoDB Streams source and lease table tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One injected answer to the next call of `operation` (e.g. "GetRecords").
pub struct Fault {
    pub operation: &'static str,
    pub status: u16,
    pub body: String,
}

impl Fault {
    /// A DynamoDB Streams error response with this code.
    pub fn error(operation: &'static str, status: u16, code: &str) -> Fault {
        Fault {
            operation,
            status,
            body: format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected"}}"#
            ),
        }
    }
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    /// (operation, request body) of every call, in order.
    calls: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub async fn start(upstream: String) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), shared.clone()));
            }
        });
        FaultProxy { endpoint, state }
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// The request bodies of the calls of `operation` so far.
    pub fn calls(&self, operation: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

/// One HTTP/1.1 message (request or response) with a Content-Length body: (head, body).
async fn read_message(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&byte[..n]);
    }
    Some((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

async fn serve(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    while let Some((head, body)) = read_message(&mut client).await {
        let operation = header(&head, "x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_string();
        let fault = {
            let mut state = state.lock().unwrap();
            state.calls.push((
                operation.clone(),
                String::from_utf8_lossy(&body).to_string(),
            ));
            let due = state
                .faults
                .front()
                .is_some_and(|f| f.operation == operation);
            if due {
                state.faults.pop_front()
            } else {
                None
            }
        };
        let response = match fault {
            Some(fault) => {
                let mut out = format!(
                    "HTTP/1.1 {} Injected\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n",
                    fault.status,
                    fault.body.len()
                )
                .into_bytes();
                out.extend_from_slice(fault.body.as_bytes());
                out
            }
            None => {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut request = head.into_bytes();
                request.extend_from_slice(&body);
                if server.write_all(&request).await.is_err() {
                    return;
                }
                let Some((head, body)) = read_message(&mut server).await else {
                    return;
                };
                let mut out = head.into_bytes();
                out.extend_from_slice(&body);
                out
            }
        };
        if client.write_all(&response).await.is_err() {
            return;
        }
    }
}
