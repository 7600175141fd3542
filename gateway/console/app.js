// The console page: agent directory, chat (WebSocket), task events (SSE), task list (REST).
// Each panel is its own module; this one loads the directory and restores the task view of
// the URL (`#task={agent}/{id}`) after a reload.

import * as api from "./api.js";
import "./chat.js";
import { watchTask } from "./tasks.js";
import { $, el, showError } from "./view.js";

$("error-dismiss").addEventListener("click", () => {
  $("error").hidden = true;
  $("error-text").textContent = "";
});

// ---- agent directory -------------------------------------------------------------------------

async function loadAgents() {
  $("agents-status").textContent = "loading…";
  let agents;
  try {
    agents = await api.directory();
  } catch (e) {
    $("agents-status").textContent = "";
    showError(e);
    return;
  }
  const list = $("agents");
  list.replaceChildren();
  for (const a of agents) list.append(agentCard(a));
  $("agents-status").textContent = `${agents.length} agents`;
  for (const id of ["chat-agent", "task-agent", "tasks-agent"]) {
    const select = $(id);
    const keep = select.value;
    select.replaceChildren(...agents.map((a) => new Option(a.name, a.name)));
    if (keep && agents.some((a) => a.name === keep)) select.value = keep;
  }
  document.body.dataset.agentsLoaded = "true";
}

function agentCard(a) {
  const li = el("li", null, "card");
  li.dataset.agent = a.name;
  const title = el("h3", a.name);
  const badges = el("p", null, "badges");
  badges.append(el("span", a.available ? "available" : "unavailable", a.available ? "ok" : "bad"));
  if (a.streaming) badges.append(" ", el("span", "streaming", "ok"));
  const skills = el("ul", null, "skills");
  skills.setAttribute("aria-label", `Skills of ${a.name}`);
  for (const s of a.skills ?? []) {
    const item = el("li", null, "skill");
    item.dataset.skill = s.id ?? s.name;
    item.append(el("strong", s.name || s.id), " ", el("span", s.description ?? ""));
    if (s.tags?.length) item.append(" ", el("span", s.tags.join(", "), "tags"));
    skills.append(item);
  }
  const details = el("details", null, "agent-card");
  const summary = el("summary", "Agent card");
  const pre = el("pre", "loading…");
  details.append(summary, pre);
  api
    .card(a.name)
    .then((card) => {
      pre.textContent = JSON.stringify(card, null, 2);
      summary.textContent = `Agent card: ${card.name} ${card.version ?? ""}`;
      li.dataset.cardLoaded = "true";
    })
    .catch((e) => {
      pre.textContent = `no card: ${e.message}`;
    });
  li.append(title, el("p", a.description ?? ""), badges, el("h4", "Skills"), skills, details);
  return li;
}

$("agents-refresh").addEventListener("click", loadAgents);

// ---- start -----------------------------------------------------------------------------------

await loadAgents();
const resume = /^#task=([^/]+)\/(.+)$/.exec(location.hash);
if (resume) watchTask(decodeURIComponent(resume[1]), decodeURIComponent(resume[2]));

