//! A Lambda emulator for `cargo xtask e2e`, std only (threads + `TcpListener`), on 127.0.0.1:
//!
//! - the **Runtime API**, one port per function (as each Lambda sandbox has its own):
//!   `GET /2018-06-01/runtime/invocation/next` (long poll), `POST .../invocation/{id}/response`,
//!   `POST .../invocation/{id}/error`, `POST /2018-06-01/runtime/init/error`;
//! - the **Invoke API** on one shared port: `POST /2015-03-31/functions/{name}/invocations`, where
//!   `{name}` is a function name, a full or partial ARN (qualifier ignored). `RequestResponse`
//!   (default) answers 200 with the function's payload (`X-Amz-Function-Error: Unhandled` when it
//!   failed); `X-Amz-Invocation-Type: Event` answers 202 at once and queues the invocation, which
//!   Lambda-style is retried `async_retries` times when it fails; `DryRun` answers 204.
//!
//! Every finished attempt is recorded ([`Record`]) with its outcome, for the assertions.
//!
//! Why not `cargo lambda watch --only-lambda-apis`: checked on this machine (cargo-lambda 1.9.2),
//! an `Event` invoke blocks until the function answers and returns 200, not 202 (the filter would
//! treat that as a failed async invoke), the invoked function ARN is the literal `function-arn`,
//! and it needs a Cargo project to start; it also gives no record of the outcomes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

/// How an invocation was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// The `/response` body.
    Success(Vec<u8>),
    /// The `/error` body (or the init error, or a timeout message).
    Error(Vec<u8>),
}

impl InvocationOutcome {
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Success(b) | Self::Error(b) => b,
        }
    }
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success(_))
    }
}

/// One finished attempt of one invocation.
#[derive(Clone, Debug)]
pub struct Record {
    pub function: String,
    pub request_id: String,
    pub invocation_type: InvocationType,
    /// 0 for the first attempt, then 1, 2 for Lambda-style async retries.
    pub attempt: u32,
    pub payload: Vec<u8>,
    pub outcome: InvocationOutcome,
}

impl Record {
    /// The outcome as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.outcome.body()).unwrap_or(serde_json::Value::Null)
    }
    /// The payload as JSON.
    pub fn payload_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or(serde_json::Value::Null)
    }
}

struct Pending {
    request_id: String,
    payload: Vec<u8>,
    invocation_type: InvocationType,
    attempt: u32,
    not_before: Instant,
    /// Where a synchronous caller waits for the outcome.
    responder: Option<mpsc::Sender<InvocationOutcome>>,
}

struct InFlight {
    pending: Pending,
    deadline: Instant,
}

struct Function {
    arn: String,
    runtime_addr: String,
    timeout: Duration,
    queue: VecDeque<Pending>,
    in_flight: HashMap<String, InFlight>,
}

#[derive(Default)]
struct State {
    functions: BTreeMap<String, Function>,
    records: Vec<Record>,
    next_id: u64,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    shutdown: AtomicBool,
    async_retries: u32,
    retry_delay: Duration,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the whole emulator down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an attempt's outcome; requeues a failed async attempt while retries remain.
    fn finish(
        &self,
        state: &mut State,
        function: &str,
        flight: InFlight,
        outcome: InvocationOutcome,
    ) {
        let pending = flight.pending;
        state.records.push(Record {
            function: function.to_string(),
            request_id: pending.request_id.clone(),
            invocation_type: pending.invocation_type,
            attempt: pending.attempt,
            payload: pending.payload.clone(),
            outcome: outcome.clone(),
        });
        if let Some(responder) = &pending.responder {
            let _ = responder.send(outcome.clone());
        }
        if !outcome.is_success()
            && pending.invocation_type == InvocationType::Event
            && pending.attempt < self.async_retries
            && let Some(f) = state.functions.get_mut(function)
        {
            f.queue.push_back(Pending {
                attempt: pending.attempt + 1,
                not_before: Instant::now() + self.retry_delay,
                responder: None,
                ..pending
            });
        }
        self.changed.notify_all();
    }

    /// Fails in-flight invocations past their deadline (Lambda's "Task timed out").
    fn reap_timeouts(&self, state: &mut State) {
        let now = Instant::now();
        let expired: Vec<(String, String)> = state
            .functions
            .iter()
            .flat_map(|(name, f)| {
                f.in_flight
                    .iter()
                    .filter(|(_, flight)| flight.deadline <= now)
                    .map(|(id, _)| (name.clone(), id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (name, id) in expired {
            let Some(function) = state.functions.get_mut(&name) else {
                continue;
            };
            let timeout = function.timeout.as_secs();
            if let Some(flight) = function.in_flight.remove(&id) {
                let body = serde_json::json!({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": format!("{id} Task timed out after {timeout} seconds"),
                });
                self.finish(
                    state,
                    &name,
                    flight,
                    InvocationOutcome::Error(body.to_string().into_bytes()),
                );
            }
        }
    }
}

/// The running emulator. Dropping it stops its listener threads.
pub struct Emulator {
    inner: Arc<Inner>,
    /// `127.0.0.1:PORT` of the Invoke API.
    pub invoke_addr: String,
    threads: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Starts the Invoke API on a free port.
    pub fn start(async_retries: u32, retry_delay: Duration) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            shutdown: AtomicBool::new(false),
            async_retries,
            retry_delay,
        });
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the Invoke API port")?;
        let invoke_addr = listener.local_addr()?.to_string();
        let mut emulator = Self {
            inner,
            invoke_addr,
            threads: Vec::new(),
        };
        emulator.serve(listener, None)?;
        Ok(emulator)
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_LAMBDA`.
    pub fn invoke_endpoint(&self) -> String {
        format!("http://{}", self.invoke_addr)
    }

    /// Registers a function and starts its Runtime API; returns `127.0.0.1:PORT` for
    /// `AWS_LAMBDA_RUNTIME_API`.
    pub fn add_function(
        &mut self,
        name: &str,
        arn: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a Runtime API port")?;
        let addr = listener.local_addr()?.to_string();
        {
            let mut state = self.inner.lock();
            anyhow::ensure!(
                !state.functions.contains_key(name),
                "function {name} is already registered"
            );
            state.functions.insert(
                name.to_string(),
                Function {
                    arn: arn.to_string(),
                    runtime_addr: addr.clone(),
                    timeout,
                    queue: VecDeque::new(),
                    in_flight: HashMap::new(),
                },
            );
        }
        self.serve(listener, Some(name.to_string()))?;
        Ok(addr)
    }

    /// The Runtime API address of a registered function.
    pub fn runtime_addr(&self, name: &str) -> Option<String> {
        self.inner
            .lock()
            .functions
            .get(name)
            .map(|f| f.runtime_addr.clone())
    }

    fn serve(&mut self, listener: TcpListener, function: Option<String>) -> anyhow::Result<()> {
        listener.set_nonblocking(true)?;
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new()
            .name(format!(
                "lambda-emulator-{}",
                function.as_deref().unwrap_or("invoke")
            ))
            .spawn(move || accept_loop(&inner, &listener, function.as_deref()))?;
        self.threads.push(thread);
        Ok(())
    }

    /// Every finished attempt so far, in completion order.
    pub fn records(&self) -> Vec<Record> {
        self.inner.lock().records.clone()
    }

    /// Invocations queued or running, per function (for progress and timeout messages).
    pub fn busy(&self) -> Vec<String> {
        let state = self.inner.lock();
        state
            .functions
            .iter()
            .filter(|(_, f)| !f.queue.is_empty() || !f.in_flight.is_empty())
            .map(|(name, f)| {
                format!(
                    "{name}: {} queued, {} running",
                    f.queue.len(),
                    f.in_flight.len()
                )
            })
            .collect()
    }

    /// Waits until no invocation is queued or running (retries included), at most `timeout`.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        loop {
            self.inner.reap_timeouts(&mut state);
            let idle = state
                .functions
                .values()
                .all(|f| f.queue.is_empty() && f.in_flight.is_empty());
            if idle {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = (deadline - now).min(Duration::from_millis(200));
            state = match self.inner.changed.wait_timeout(state, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        self.inner.changed.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn accept_loop(inner: &Arc<Inner>, listener: &TcpListener, function: Option<&str>) {
    while !inner.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let inner = inner.clone();
                let function = function.map(str::to_string);
                // Connection threads end when the peer closes or at shutdown; they are not
                // joined (a long-polling runtime client may hold one open until it is killed).
                let _ = std::thread::Builder::new()
                    .name("lambda-emulator-conn".into())
                    .spawn(move || {
                        let _ = serve_connection(&inner, stream, function.as_deref());
                    });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1, the small part of it the SDK and lambda_runtime speak
// ---------------------------------------------------------------------------------------------

pub(crate) struct Request {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// Reads one request; `None` when the peer closed the connection between requests.
pub(crate) fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let line = loop {
        match read_line(reader)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let headers = read_headers(reader)?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        // Answered by the caller's `100 Continue` write below; clients also send anyway.
    }
    let body = read_body(
        reader,
        header("transfer-encoding"),
        header("content-length"),
    )?;
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    }))
}

fn read_headers(reader: &mut impl BufRead) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader)? else {
            return Err(invalid("connection closed inside the headers"));
        };
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
}

/// A body framed by `Transfer-Encoding: chunked` (trailers read and dropped), `Content-Length`,
/// or nothing (empty).
pub(crate) fn read_body(
    reader: &mut impl BufRead,
    transfer_encoding: Option<&str>,
    content_length: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    if transfer_encoding.is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let Some(size_line) = read_line(reader)? else {
                return Err(invalid("connection closed inside a chunked body"));
            };
            let size_hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                read_headers(reader)?; // trailers
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    let length: usize = match content_length {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {v:?}")))?,
        None => 0,
    };
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

pub(crate) fn write_response(
    stream: &mut impl Write,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// The Runtime API's answer to a response or error the runtime posts.
fn write_accepted(stream: &mut impl Write) -> std::io::Result<()> {
    write_response(
        stream,
        202,
        &[("Content-Type", "application/json".into())],
        br#"{"status":"OK"}"#,
    )
}

fn json_error(
    stream: &mut impl Write,
    status: u16,
    error_type: &str,
    message: &str,
) -> std::io::Result<()> {
    let body = serde_json::json!({ "Type": "User", "message": message }).to_string();
    write_response(
        stream,
        status,
        &[
            ("Content-Type", "application/json".into()),
            ("x-amzn-ErrorType", error_type.into()),
        ],
        body.as_bytes(),
    )
}

/// True when the peer closed its side (a killed runtime): such a connection must not be handed
/// an invocation, or the invocation would be lost until its timeout.
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

fn serve_connection(
    inner: &Arc<Inner>,
    stream: TcpStream,
    function: Option<&str>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while !inner.shutdown.load(Ordering::SeqCst) {
        // `Expect: 100-continue` would need an interim answer before the body; neither the SDK
        // nor lambda_runtime sends it for these small bodies, so it is not supported.
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        match function {
            Some(name) => runtime_api(inner, name, &request, &mut writer)?,
            None => invoke_api(inner, &request, &mut writer)?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Invoke API
// ---------------------------------------------------------------------------------------------

/// `%XX` decoding of a path segment.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The function name in a name, a full ARN or a partial ARN (`acct:function:name`), qualifier
/// dropped.
pub(crate) fn function_name(reference: &str) -> String {
    match reference.split_once("function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => reference.split(':').next().unwrap_or(reference).to_string(),
    }
}

fn new_request_id(state: &mut State) -> String {
    state.next_id += 1;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = nanos ^ (u128::from(std::process::id()) << 64);
    let hex = format!("{:032x}", mixed.wrapping_add(u128::from(state.next_id)));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn invoke_api(
    inner: &Arc<Inner>,
    request: &Request,
    stream: &mut impl Write,
) -> std::io::Result<()> {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let ["2015-03-31", "functions", raw_name, "invocations"] = segments.as_slice() else {
        return json_error(
            stream,
            404,
            "ResourceNotFoundException",
            &format!("no such API: {} {}", request.method, request.path),
        );
    };
    if request.method != "POST" {
        return json_error(
            stream,
            405,
            "InvalidRequestContentException",
            "Invoke is POST",
        );
    }
    let name = function_name(&percent_decode(raw_name));
    let invocation_type = match request
        .header("x-amz-invocation-type")
        .unwrap_or("RequestResponse")
    {
        "Event" => InvocationType::Event,
        "RequestResponse" => InvocationType::RequestResponse,
        "DryRun" if inner.lock().functions.contains_key(&name) => {
            return write_response(stream, 204, &[], b"");
        }
        "DryRun" => return function_not_found(stream, &name),
        other => {
            return json_error(
                stream,
                400,
                "InvalidParameterValueException",
                &format!("unknown invocation type {other:?}"),
            );
        }
    };
    let (sender, receiver) = mpsc::channel();
    let responder = (invocation_type == InvocationType::RequestResponse).then_some(sender);
    let Some((request_id, timeout)) = enqueue(
        inner,
        &name,
        request.body.clone(),
        invocation_type,
        responder,
    ) else {
        return function_not_found(stream, &name);
    };
    let id_header = ("x-amzn-RequestId", request_id);
    if invocation_type == InvocationType::Event {
        return write_response(stream, 202, &[id_header], b"");
    }
    let outcome = receiver
        .recv_timeout(timeout + Duration::from_secs(30))
        .ok();
    write_outcome(stream, id_header, outcome)
}

fn function_not_found(stream: &mut impl Write, name: &str) -> std::io::Result<()> {
    json_error(
        stream,
        404,
        "ResourceNotFoundException",
        &format!("Function not found: {name}"),
    )
}

/// Queues an invocation of `name`; its request id and the function's timeout, or `None` for
/// an unknown function.
fn enqueue(
    inner: &Arc<Inner>,
    name: &str,
    payload: Vec<u8>,
    invocation_type: InvocationType,
    responder: Option<mpsc::Sender<InvocationOutcome>>,
) -> Option<(String, Duration)> {
    let mut state = inner.lock();
    let request_id = new_request_id(&mut state);
    let function = state.functions.get_mut(name)?;
    function.queue.push_back(Pending {
        request_id: request_id.clone(),
        payload,
        invocation_type,
        attempt: 0,
        not_before: Instant::now(),
        responder,
    });
    let timeout = function.timeout;
    inner.changed.notify_all();
    Some((request_id, timeout))
}

/// The answer to a `RequestResponse` invocation: 200 with the payload, flagged as a function
/// error when the function failed.
fn write_outcome(
    stream: &mut impl Write,
    id_header: (&'static str, String),
    outcome: Option<InvocationOutcome>,
) -> std::io::Result<()> {
    let (error, body) = match outcome {
        Some(InvocationOutcome::Success(body)) => (false, body),
        Some(InvocationOutcome::Error(body)) => (true, body),
        None => {
            return json_error(
                stream,
                500,
                "ServiceException",
                "the emulator got no outcome for the invocation",
            );
        }
    };
    let mut headers = vec![id_header, ("X-Amz-Executed-Version", "$LATEST".into())];
    if error {
        headers.push(("X-Amz-Function-Error", "Unhandled".into()));
    }
    headers.push(("Content-Type", "application/json".into()));
    write_response(stream, 200, &headers, &body)
}

// ---------------------------------------------------------------------------------------------
// Runtime API
// ---------------------------------------------------------------------------------------------

fn runtime_api(
    inner: &Arc<Inner>,
    name: &str,
    request: &Request,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
            next_invocation(inner, name, stream)
        }
        (
            "POST",
            [
                "2018-06-01",
                "runtime",
                "invocation",
                id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let outcome = if *kind == "response" {
                InvocationOutcome::Success(request.body.clone())
            } else {
                InvocationOutcome::Error(error_body(request))
            };
            let mut state = inner.lock();
            let flight = state
                .functions
                .get_mut(name)
                .and_then(|f| f.in_flight.remove(*id));
            match flight {
                Some(flight) => {
                    inner.finish(&mut state, name, flight, outcome);
                    drop(state);
                    write_accepted(stream)
                }
                None => {
                    drop(state);
                    let body = serde_json::json!({"errorMessage": format!("unknown request id {id}"), "errorType": "InvalidRequestID"});
                    write_response(stream, 400, &[], body.to_string().as_bytes())
                }
            }
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
            // The runtime could not start: every queued and running invocation fails with it.
            let body = error_body(request);
            let mut state = inner.lock();
            let mut failed = Vec::new();
            if let Some(f) = state.functions.get_mut(name) {
                failed.extend(f.in_flight.drain().map(|(_, flight)| flight));
                failed.extend(f.queue.drain(..).map(|pending| InFlight {
                    pending,
                    deadline: Instant::now(),
                }));
            }
            for flight in failed {
                inner.finish(
                    &mut state,
                    name,
                    flight,
                    InvocationOutcome::Error(body.clone()),
                );
            }
            // Keep the init error visible even without any invocation.
            state.records.push(Record {
                function: name.to_string(),
                request_id: "init".into(),
                invocation_type: InvocationType::Event,
                attempt: 0,
                payload: Vec::new(),
                outcome: InvocationOutcome::Error(body),
            });
            drop(state);
            write_accepted(stream)
        }
        _ => {
            let body = serde_json::json!({"errorMessage": format!("no such Runtime API: {} {}", request.method, request.path), "errorType": "InvalidRequest"});
            write_response(stream, 404, &[], body.to_string().as_bytes())
        }
    }
}

/// The error body, with the `Lambda-Runtime-Function-Error-Type` header folded in when the body
/// has no `errorType`.
fn error_body(request: &Request) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_else(
        |_| serde_json::json!({ "errorMessage": String::from_utf8_lossy(&request.body) }),
    );
    if let Some(error_type) = request.header("lambda-runtime-function-error-type")
        && let Some(object) = value.as_object_mut()
        && !object.contains_key("errorType")
    {
        object.insert("errorType".into(), error_type.into());
    }
    value.to_string().into_bytes()
}

fn trace_id(request_id: &str) -> String {
    let compact: String = request_id.chars().filter(|c| *c != '-').take(24).collect();
    format!("Root=1-00000000-{compact}")
}

fn next_invocation(inner: &Arc<Inner>, name: &str, stream: &mut TcpStream) -> std::io::Result<()> {
    let mut state = inner.lock();
    loop {
        if inner.shutdown.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("emulator shutting down"));
        }
        if peer_closed(stream) {
            return Err(std::io::Error::other("runtime went away"));
        }
        inner.reap_timeouts(&mut state);
        let now = Instant::now();
        let Some(function) = state.functions.get_mut(name) else {
            return Err(std::io::Error::other("function removed"));
        };
        if let Some(position) = function.queue.iter().position(|p| p.not_before <= now) {
            let Some(pending) = function.queue.remove(position) else {
                continue;
            };
            let deadline = now + function.timeout;
            let deadline_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
                + function.timeout.as_millis();
            let headers = vec![
                ("Lambda-Runtime-Aws-Request-Id", pending.request_id.clone()),
                ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", function.arn.clone()),
                ("Lambda-Runtime-Trace-Id", trace_id(&pending.request_id)),
                ("Content-Type", "application/json".into()),
            ];
            let body = pending.payload.clone();
            let id = pending.request_id.clone();
            function
                .in_flight
                .insert(id.clone(), InFlight { pending, deadline });
            drop(state);
            if let Err(e) = write_response(stream, 200, &headers, &body) {
                // The runtime went away before it got the event: put it back.
                let mut state = inner.lock();
                if let Some(f) = state.functions.get_mut(name)
                    && let Some(flight) = f.in_flight.remove(&id)
                {
                    f.queue.push_front(flight.pending);
                }
                return Err(e);
            }
            return Ok(());
        }
        state = match inner
            .changed
            .wait_timeout(state, Duration::from_millis(100))
        {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_arns() {
        assert_eq!(function_name("f"), "f");
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:f"),
            "f"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"),
            "f"
        );
        assert_eq!(function_name("123456789012:function:f"), "f");
        assert_eq!(percent_decode("arn%3Aaws%3Alambda"), "arn:aws:lambda");
    }

    #[test]
    fn chunked_bodies_with_trailers() {
        let raw = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        let request = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(request.body, b"abcde");
        assert_eq!(request.path, "/x");
    }

    /// A sync and an async invoke through a fake runtime that answers over real sockets.
    #[test]
    fn sync_and_event_invocations_round_trip() {
        let mut emulator = Emulator::start(1, Duration::from_millis(10)).unwrap();
        let runtime = emulator
            .add_function(
                "f",
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                Duration::from_secs(5),
            )
            .unwrap();
        let worker = std::thread::spawn(move || {
            for _ in 0..3 {
                let mut s = TcpStream::connect(&runtime).unwrap();
                write!(
                    s,
                    "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                .unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let _status = read_line(&mut r).unwrap();
                let headers = read_headers(&mut r).unwrap();
                let get = |n: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap()
                };
                let body = read_body(&mut r, None, Some(&get("content-length"))).unwrap();
                let id = get("lambda-runtime-aws-request-id");
                let kind = if body == b"fail" { "error" } else { "response" };
                let answer = format!("{{\"echo\":{}}}", body.len());
                write!(s, "POST /2018-06-01/runtime/invocation/{id}/{kind} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{answer}", answer.len()).unwrap();
                let status = read_line(&mut r).unwrap().unwrap();
                assert!(status.contains("202"), "{status}");
            }
        });
        let mut s = TcpStream::connect(&emulator.invoke_addr).unwrap();
        write!(s, "POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert!(read_line(&mut r).unwrap().unwrap().contains("200"));
        write!(s, "POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nX-Amz-Invocation-Type: Event\r\nContent-Length: 4\r\n\r\nfail").unwrap();
        let headers = read_headers(&mut r).unwrap();
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.clone());
        let body = read_body(&mut r, None, len.as_deref()).unwrap();
        assert_eq!(body, br#"{"echo":2}"#);
        assert!(read_line(&mut r).unwrap().unwrap().contains("202"));
        worker.join().unwrap();
        assert!(emulator.wait_idle(Duration::from_secs(5)));
        let records = emulator.records();
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(records[0].outcome.is_success());
        assert_eq!(
            (records[1].attempt, records[1].outcome.is_success()),
            (0, false)
        );
        assert_eq!(
            (records[2].attempt, records[2].outcome.is_success()),
            (1, false)
        );
    }
}
