// busgate's web page: polls /api/names and /api/connections, and shows /monitor's live events.
"use strict";

const maxEvents = 500;
let paused = false;
let socket = null;
let shown = 0;

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows.map((values) => {
    const row = document.createElement("tr");
    values.forEach((value) => cell(row, value));
    return row;
  }));
}

async function api(route) {
  const response = await fetch(`/api/${route}`, { credentials: "same-origin" });
  if (response.status === 401) {
    document.getElementById("login").hidden = false;
    throw new Error("sign in with the bus's token");
  }
  if (!response.ok) {
    throw new Error(`${route}: HTTP ${response.status}`);
  }
  return response.json();
}

async function refresh() {
  try {
    const [names, connections] = await Promise.all([api("names"), api("connections")]);
    fill("names", names.map((n) => [n.name, n.owner ?? (n.activatable ? "(activatable)" : ""), n.queue.join(" ")]));
    fill("connections", connections.map((c) => [c.unique_name + (c.monitor ? " (monitor)" : ""), c.uid, c.pid,
      c.names.join(" "), c.match_rules.length, c.queued_bytes]));
    document.getElementById("name-count").textContent = names.length;
    document.getElementById("connection-count").textContent = connections.length;
    document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (!socket) {
      connectMonitor();
    }
  } catch (error) {
    document.getElementById("status").textContent = error.message;
  }
}

function filterMessage() {
  return JSON.stringify({ match: document.getElementById("filter").value.trim(),
                          body: document.getElementById("bodies").checked });
}

function connectMonitor() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/monitor`);
  socket.onopen = () => {
    document.getElementById("monitor-status").textContent = "live";
    socket.send(filterMessage());
  };
  socket.onclose = () => {
    document.getElementById("monitor-status").textContent = "disconnected";
    socket = null;
  };
  socket.onmessage = (message) => showBatch(JSON.parse(message.data));
}

function showBatch(batch) {
  if (batch.status) {
    document.getElementById("monitor-status").textContent =
      batch.status.error ? `filter refused: ${batch.status.error}` : `live, filter: ${batch.status.match || "(all)"}`;
  }
  document.getElementById("dropped").textContent = batch.dropped_total;
  if (paused) {
    return;
  }
  const body = document.querySelector("#events tbody");
  for (const event of batch.events) {
    const row = document.createElement("tr");
    row.className = event.type;
    cell(row, new Date(event.time * 1000).toISOString().slice(11, 23));
    cell(row, event.type);
    cell(row, event.sender ?? "");
    cell(row, event.destination ?? "");
    cell(row, event.path ?? "");
    cell(row, [event.interface, event.member ?? event.error_name].filter(Boolean).join("."));
    cell(row, event.body === undefined ? event.signature : JSON.stringify(event.body));
    body.prepend(row);
    shown += 1;
  }
  while (body.rows.length > maxEvents) {
    body.deleteRow(body.rows.length - 1);
  }
  document.getElementById("event-count").textContent = shown;
}

document.getElementById("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const match = document.getElementById("filter").value.trim();
  document.getElementById("capture").href = `/capture.pcapng?seconds=10&match=${encodeURIComponent(match)}`;
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(filterMessage());
  }
});
document.getElementById("pause").addEventListener("click", (event) => {
  paused = !paused;
  event.target.textContent = paused ? "Resume" : "Pause";
});
document.getElementById("clear").addEventListener("click", () => {
  document.querySelector("#events tbody").replaceChildren();
  shown = 0;
  document.getElementById("event-count").textContent = 0;
});

refresh();
setInterval(refresh, 1000);
