//! Size limits end to end (issue 9, item 2): a message of the documented maximum size is
//! accepted, read back with GetTask and listed with ListTasks, over gRPC and through the
//! gateway; one byte more is refused up front; large tasks never break ListTasks for others.

use prost::Message as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::{
    pb::a2a::{ListTasksRequest, SendMessageRequest, Task, TaskState, send_message_response},
    server::{DEFAULT_MAX_MESSAGE_BYTES, REPLY_HEADROOM_BYTES},
};
use switchyard_e2e::{Served, message, request, status_of};

use crate::gateway::{Gw, json_of};

/// A SendMessageRequest whose encoded size is exactly `size` bytes.
fn request_of_size(size: usize) -> SendMessageRequest {
    let base = request(message("", Value::Null)).encoded_len();
    let mut text_len = size - base;
    loop {
        let r = request(message(&"a".repeat(text_len), Value::Null));
        match r.encoded_len() {
            n if n == size => return r,
            n if n > size => text_len -= n - size,
            n => text_len += size - n,
        }
    }
}

fn text_of(task: &Task) -> usize {
    task.history[0].text().len()
}

fn task_of(r: switchyard::pb::a2a::SendMessageResponse) -> Task {
    match r.payload {
        Some(send_message_response::Payload::Task(t)) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}

#[tokio::test]
async fn a_message_of_the_maximum_size_round_trips_over_grpc_and_one_byte_more_is_refused() {
    let (echo, _dir) = Served::echo().await;
    let max = request_of_size(DEFAULT_MAX_MESSAGE_BYTES);
    let text_len = max.message.as_ref().expect("message").text().len();

    let task = task_of(
        echo.client
            .send_message(max)
            .await
            .expect("max size accepted"),
    );
    assert_eq!(task.state(), TaskState::Completed);
    assert_eq!(text_of(&task), text_len);
    // The reply held the message twice (history and the echo artifact): over 8 MiB.
    assert!(task.encoded_len() > 2 * DEFAULT_MAX_MESSAGE_BYTES);

    let got = echo.client.get_task(&task.id, None).await.expect("GetTask");
    assert_eq!(text_of(&got), text_len);
    let list = echo
        .client
        .list_tasks(ListTasksRequest {
            include_artifacts: Some(true),
            ..Default::default()
        })
        .await
        .expect("ListTasks");
    assert_eq!(list.tasks.len(), 1);
    assert_eq!(text_of(&list.tasks[0]), text_len);

    let over = request_of_size(DEFAULT_MAX_MESSAGE_BYTES + 1);
    let status = status_of(echo.client.send_message(over).await);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let list = echo
        .client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("ListTasks");
    assert_eq!(list.total_size, 1, "the refused message made no task");
}

/// A REST `message:send` body of exactly `size` bytes, and the length of its text.
fn body_of_size(size: usize) -> (String, usize) {
    let body = |n: usize| {
        json!({"message": {"messageId": "m-big", "role": "ROLE_USER",
                           "parts": [{"text": "a".repeat(n)}]}})
        .to_string()
    };
    let base = body(0).len();
    let b = body(size - base);
    assert_eq!(b.len(), size);
    (b, size - base)
}

#[tokio::test]
async fn a_body_of_the_maximum_size_round_trips_through_the_gateway_and_one_byte_more_is_413() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let max = switchyard_gateway::GatewayConfig::default().max_body_bytes;
    let (body, text_len) = body_of_size(max);
    let r = gw
        .req(reqwest::Method::POST, "/agents/echo/message:send")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let sent = json_of(r).await;
    let id = sent["task"]["id"].as_str().expect("task id").to_owned();
    assert_eq!(sent["task"]["status"]["state"], "TASK_STATE_COMPLETED");

    let text = |t: &Value| {
        t["history"][0]["parts"][0]["text"]
            .as_str()
            .map_or(0, str::len)
    };
    let r = gw
        .req(reqwest::Method::GET, &format!("/agents/echo/tasks/{id}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text(&json_of(r).await), text_len);

    let r = gw
        .req(
            reqwest::Method::GET,
            "/agents/echo/tasks?includeArtifacts=true",
        )
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), StatusCode::OK);
    let list = json_of(r).await;
    assert_eq!(list["tasks"][0]["id"], id.as_str());
    assert_eq!(text(&list["tasks"][0]), text_len);

    let r = gw
        .req(reqwest::Method::POST, "/agents/echo/message:send")
        .header("content-type", "application/json")
        .body(body_of_size(max + 1).0)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn large_tasks_page_list_tasks_by_bytes_for_every_client() {
    const MESSAGE: usize = 64 * 1024;
    const TASK: usize = 256 * 1024;
    let (echo, _dir) = Served::echo_with(|c| {
        c.max_message_bytes = MESSAGE;
        c.max_task_bytes = TASK;
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let t = task_of(
            echo.client
                .send_message(request_of_size(MESSAGE))
                .await
                .expect("send"),
        );
        assert_eq!(t.state(), TaskState::Completed);
        ids.push(t.id);
    }
    // Six tasks of ~128 KiB each (history + artifact): one page of all of them would be
    // ~768 KiB, past the reply limit; pages are cut by bytes instead.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = echo
            .client
            .list_tasks(ListTasksRequest {
                include_artifacts: Some(true),
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("every page can be read");
        assert!(!page.tasks.is_empty());
        assert!(page.encoded_len() <= TASK + REPLY_HEADROOM_BYTES);
        assert_eq!(page.total_size, 6);
        pages += 1;
        seen.extend(page.tasks.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= 3, "pages were cut by bytes ({pages})");
    ids.reverse();
    assert_eq!(seen, ids, "every task once, newest first");
}

#[tokio::test]
async fn a_task_never_grows_past_max_task_bytes() {
    const LIMIT: usize = 64 * 1024;
    let (echo, _dir) = Served::echo_with(|c| {
        c.max_message_bytes = LIMIT;
        c.max_task_bytes = LIMIT;
    })
    .await;
    // The echo artifact would double a 40 KiB message past the limit: the agent's event is
    // refused and the task fails, readable, with a clear message.
    let t = task_of(
        echo.client
            .send_message(request_of_size(40 * 1024))
            .await
            .expect("send"),
    );
    assert_eq!(t.state(), TaskState::Failed);
    let why = t.status.as_ref().and_then(|s| s.message.as_ref());
    let why = why.map(|m| m.text()).unwrap_or_default();
    assert!(why.contains("too large"), "{why}");
    echo.client.get_task(&t.id, None).await.expect("readable");

    // A continuation that would take the stored task past the limit is refused up front.
    let asked = echo
        .client
        .send(message(&"q".repeat(20 * 1024), json!({"ask": "more?"})))
        .await
        .expect("ask");
    assert_eq!(asked.state(), TaskState::InputRequired);
    let mut more = message(&"b".repeat(50 * 1024), Value::Null);
    more.task_id.clone_from(&asked.id);
    let status = status_of(echo.client.send(more).await);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("max_task_bytes"), "{status:?}");
    let t = echo.client.get_task(&asked.id, None).await.expect("get");
    assert_eq!(t.state(), TaskState::InputRequired);
}

/// Replaces one artifact `rounds` times with `size` bytes of text each (`append = false`): the
/// task holds one copy, whatever the number of rounds.
struct Rewriter {
    rounds: usize,
    size: usize,
}

#[tonic::async_trait]
impl switchyard::Agent for Rewriter {
    fn card(&self) -> switchyard::pb::a2a::AgentCard {
        switchyard::card::builder("rewriter", "Rewrites one artifact").build()
    }

    async fn execute(
        &self,
        _ctx: switchyard::TaskContext,
        events: switchyard::TaskEvents,
    ) -> Result<(), switchyard::AgentError> {
        for i in 0..self.rounds {
            let mut doc = switchyard::pb::a2a::Artifact::new(
                "doc",
                vec![switchyard::pb::a2a::Part::text(format!(
                    "{i:>width$}",
                    width = self.size
                ))],
            );
            doc.artifact_id = "doc".into();
            events.artifact(doc).await?;
            // Each version is committed before the next (as when a document is rewritten
            // over time): events accepted but not yet committed count in full.
            events.flush().await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_artifact_replaced_many_times_counts_once_toward_max_task_bytes() {
    const LIMIT: usize = 256 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    // 40 rounds of 32 KiB: 1.25 MiB published, one 32 KiB artifact kept.
    let agent = Rewriter {
        rounds: 40,
        size: 32 * 1024,
    };
    let served = Served::start_in(agent, dir.path(), |c| {
        c.max_message_bytes = LIMIT;
        c.max_task_bytes = LIMIT;
    })
    .await;
    let t = task_of(
        served
            .client
            .send_message(request(message("go", Value::Null)))
            .await
            .expect("send"),
    );
    let why = t.status.as_ref().and_then(|s| s.message.as_ref());
    assert_eq!(
        t.state(),
        TaskState::Completed,
        "{:?}",
        why.map(|m| m.text())
    );
    assert_eq!(t.artifacts.len(), 1);
    assert_eq!(t.artifacts[0].text().trim_start(), "39");
}
