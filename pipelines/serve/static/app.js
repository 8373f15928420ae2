// The web page: ask with a streamed answer, inspect citations, give feedback, see hot passages and adapters.
"use strict";
const $ = (id) => document.getElementById(id);
let current = null;  // the last full answer (JSON of /v1/ask)

function headers(json = true) {
  const h = json ? { "Content-Type": "application/json" } : {};
  const key = $("key").value || localStorage.getItem("rag-key") || "";
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }

async function ask(question) {
  document.body.dataset.state = "asking";
  text($("answer"), ""); $("citations").replaceChildren(); $("passage").style.display = "none";
  $("feedback").hidden = true; text($("answer-meta"), "");
  const res = await fetch("/v1/ask", { method: "POST", headers: headers(), body: JSON.stringify({ question, stream: true }) });
  if (!res.ok) { return fail((await res.json()).error || res.statusText); }
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) { handle(buffer.slice(0, cut)); buffer = buffer.slice(cut + 2); }
  }
}

function handle(block) {  // one Server-Sent Event: "event: NAME" and "data: JSON" lines
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  const obj = JSON.parse(data);
  if (event === "token") $("answer").textContent += obj.text;
  else if (event === "answer") show(obj);
  else if (event === "error") fail(obj.detail);
}

function show(answer) {
  current = answer;
  text($("answer"), answer.answer);
  for (const c of answer.citations) {
    const b = document.createElement("button");
    b.className = "cite"; b.type = "button";
    text(b, `[${c.marker}] ${c.location}` + (c.kind === "marker" ? "" : " (attributed)"));
    b.onclick = () => showPassage(c.passage_id);
    $("citations").append(b);
  }
  const t = answer.timings || {};
  text($("answer-meta"), `answer ${answer.id} · ${answer.model}${answer.adapter ? " + " + answer.adapter : ""} · ` +
    `first token ${(t.first_token_s || 0).toFixed(2)} s · total ${(t.total_s || 0).toFixed(2)} s`);
  $("feedback").hidden = false; text($("feedback-state"), "");
  document.body.dataset.state = "answered";
  loadStats();
}

function showPassage(id) {
  const hit = (current.hits || []).find((h) => h.passage_id === id);
  if (!hit) return;
  text($("passage-where"), hit.location);  // relative to the ingest root: the server's own paths stay on the server
  text($("passage-text"), hit.text);
  $("passage").style.display = "block";
}

function fail(message) { $("answer").replaceChildren(text(Object.assign(document.createElement("span"), { className: "err" }), message)); document.body.dataset.state = "error"; }

async function feedback(good) {
  if (!current) return;
  const body = { answer_id: current.id, good, correction: $("correction").value.trim() || null };
  const res = await fetch("/v1/feedback", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  text($("feedback-state"), res.ok ? `thanks: marked ${good ? "good" : "bad"}` : `not stored (${res.status})`);
}

function row(table, cells, head = false) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(text(document.createElement(head ? "th" : "td"), c));
  table.append(tr);
  return tr;
}

async function loadStats() {
  const res = await fetch("/v1/stats?limit=10");
  if (!res.ok) return;
  const stats = await res.json(), table = $("hot-table");
  table.replaceChildren(); row(table, ["hits", "cited", "passage"], true);
  for (const p of stats.passages) {
    const tr = row(table, [p.decayed_hits.toFixed(2), p.decayed_cited.toFixed(2), p.location]);
    tr.title = p.text || "";
  }
}

async function loadAdapters() {
  const res = await fetch("/v1/adapters");
  if (!res.ok) return;
  const table = $("adapter-table");
  table.replaceChildren(); row(table, ["", "adapter", "passages", "gate"], true);
  const list = await res.json();
  for (const a of list.reverse()) row(table, [a.active ? "active" : "", a.id, a.passages, a.promoted ? "promoted" : "rejected"]);
  if (!list.length) row(table, ["", "none yet: the base model answers", "", ""]);
}

async function loadModel() {
  const res = await fetch("/healthz");
  if (res.ok) { const m = (await res.json()).model; text($("model"), m.model + (m.adapter ? " + " + m.adapter : "")); }
}

$("ask-form").onsubmit = (e) => { e.preventDefault(); const q = $("question").value.trim(); if (q) ask(q); };
$("good").onclick = () => feedback(true);
$("bad").onclick = () => feedback(false);
$("refresh").onclick = () => { loadStats(); loadAdapters(); };
$("key").onchange = () => localStorage.setItem("rag-key", $("key").value);
loadModel(); loadStats(); loadAdapters();
const params = new URLSearchParams(location.search);
if (params.get("q")) { $("question").value = params.get("q"); if (params.get("autoask") === "1") ask(params.get("q")); }
