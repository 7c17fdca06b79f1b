// The playground: a chat in a server-side session (POST /v1/sessions, then /messages with stream: true), the reply
// read from the event stream token by token. Plain browser JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, busy: false };

function headers() {
  return { "Content-Type": "application/json", "Authorization": "Bearer " + $("key").value.trim() };
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error ? data.error.message : `${response.status} ${response.statusText}`);
  return data;
}

function addMessage(role, text) {
  const item = document.createElement("li");
  item.className = role;
  item.textContent = text;
  $("transcript").appendChild(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function parameters() {
  const params = {
    temperature: Number($("temperature").value),
    top_p: Number($("top_p").value),
    max_tokens: Number($("max_tokens").value),
  };
  if ($("seed").value !== "") params.seed = Number($("seed").value);
  return params;
}

function showSession(transcript) {
  state.session = transcript.id;
  $("session").textContent = transcript.id;
  $("tokens").textContent = transcript.token_count;
  $("transcript").replaceChildren();
  if (transcript.system_prompt) addMessage("system", transcript.system_prompt);
  for (const message of transcript.messages) addMessage(message.role, message.content);
  for (const id of ["send", "fork", "reset"]) $(id).disabled = false;
}

async function connect() {
  localStorage.setItem("gpt2o.key", $("key").value.trim());
  try {
    const models = await call("GET", "/v1/models");
    const select = $("model");
    const chosen = select.value;
    select.replaceChildren(...models.data.filter((m) => m.heads.includes("lm")).map((m) => new Option(m.id, m.id)));
    if (chosen) select.value = chosen;
    if (!select.value) throw new Error("no language model is served");
    await newSession();
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function newSession() {
  const system = $("system").value.trim();
  const transcript = await call("POST", "/v1/sessions", { model: $("model").value, system_prompt: system || null, ...parameters() });
  showSession(transcript);
  setStatus(`Connected · ${transcript.model}`);
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") return;
      onEvent(JSON.parse(data));
    }
  }
}

async function send(event) {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text || state.busy || !state.session) return;
  state.busy = true;
  $("send").disabled = true;
  $("message").value = "";
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  reply.classList.add("streaming");
  const started = performance.now();
  let first = null, tokens = 0;
  try {
    const response = await fetch(`/v1/sessions/${encodeURIComponent(state.session)}/messages`, {
      method: "POST", headers: headers(),
      body: JSON.stringify({ content: text, stream: true, stream_options: { include_usage: true }, ...parameters() }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error ? data.error.message : `${response.status} ${response.statusText}`);
    }
    await readEvents(response, (chunk) => {
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      for (const choice of chunk.choices) {
        if (choice.delta && choice.delta.content) {
          first = first ?? performance.now();
          reply.textContent += choice.delta.content;
          reply.scrollIntoView({ block: "end" });
        }
      }
    });
    const seconds = (performance.now() - (first ?? started)) / 1000;
    $("speed").textContent = `${tokens} tokens · ${(tokens / Math.max(seconds, 1e-3)).toFixed(1)} tokens/s · first token ${(((first ?? performance.now()) - started) / 1000).toFixed(2)} s`;
    const transcript = await call("GET", `/v1/sessions/${encodeURIComponent(state.session)}`);
    $("tokens").textContent = transcript.token_count;
  } catch (error) {
    reply.remove();
    addMessage("error", error.message);
  } finally {
    reply.classList.remove("streaming");
    state.busy = false;
    $("send").disabled = false;
  }
}

async function fork() {
  try {
    const transcript = await call("POST", `/v1/sessions/${encodeURIComponent(state.session)}/fork`);
    showSession(transcript);
    setStatus(`Forked into ${transcript.id}`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function reset() {
  try {
    await call("DELETE", `/v1/sessions/${encodeURIComponent(state.session)}`);
    await newSession();
    $("speed").textContent = "";
  } catch (error) {
    setStatus(error.message, true);
  }
}

$("key").value = localStorage.getItem("gpt2o.key") || new URLSearchParams(location.hash.slice(1)).get("key") || "";
$("connect").addEventListener("click", connect);
$("fork").addEventListener("click", fork);
$("reset").addEventListener("click", reset);
$("composer").addEventListener("submit", send);
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) send(event);
});
if ($("key").value) connect();
