"""A stdio agent for Switchyard: newline-delimited JSON-RPC 2.0 with A2A method names and types
(the README's example, plus test behaviours chosen by the message text):

- `slow …`: reports WORKING, then waits 30 s before answering (time to kill the process);
- `garbage …`: writes a line that is not JSON-RPC, then nothing more for this request;
- `pid`: answers with the process id;
- anything else: one artifact with the text upper-cased.
"""

import json
import os
import sys
import time


def send(request, event):
    print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": event}), flush=True)


for line in sys.stdin:
    request = json.loads(line)
    if request.get("method") != "SendStreamingMessage":
        continue  # e.g. the CancelTask notification
    message = request["params"]["message"]
    text = " ".join(p.get("text", "") for p in message["parts"])
    ids = {"taskId": message["taskId"], "contextId": message["contextId"]}
    print(f"stdio agent: task {ids['taskId']}: {text[:40]!r}", file=sys.stderr, flush=True)
    send(request, {"statusUpdate": {**ids, "status": {"state": "TASK_STATE_WORKING"}}})
    if text.startswith("garbage"):
        print("this is not JSON-RPC", flush=True)
        continue
    if text.startswith("slow"):
        time.sleep(30)
    answer = str(os.getpid()) if text == "pid" else text.upper()
    artifact = {"artifactId": "a1", "name": "upper", "parts": [{"text": answer}]}
    send(request, {"artifactUpdate": {**ids, "artifact": artifact, "lastChunk": True}})
    send(request, {"statusUpdate": {**ids, "status": {"state": "TASK_STATE_COMPLETED"}}})
