// The default page of `cogment web`: plays any project with no code of its own. It builds
// forms from the project's message types (the `welcome` frame's project.types), shows the
// observation as a tree and the rewards and messages as they arrive. It uses only the
// public API of /cogment.js, like a project's own page would.
import { connect } from "/cogment.js";

const $ = (id) => document.getElementById(id);
const INTEGERS = ["int32", "uint32", "sint32", "fixed32", "sfixed32"];
const LONGS = ["int64", "uint64", "sint64", "fixed64", "sfixed64"]; // strings in JSON
const MAX_DEPTH = 3; // nested messages deeper than this are edited as JSON
let session = null;
let total = 0;

function show(element, visible) {
  element.hidden = !visible;
}

function problem(text) {
  $("problem").textContent = text || "";
  show($("problem"), Boolean(text));
}

function log(text, kind = "") {
  const item = document.createElement("li");
  item.textContent = text;
  if (kind) item.className = kind;
  $("log").prepend(item);
}

// ------------------------------------------------------------------ forms from message types

function buildFields(container, typeName, types, depth = 0) {
  container.replaceChildren();
  const type = types[typeName];
  const readers = [];
  if (!type || type.fields.length === 0) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = type ? "(no fields)" : `(unknown type ${typeName})`;
    container.append(note);
    return () => ({});
  }
  for (const field of type.fields) {
    const label = document.createElement("label");
    label.append(`${field.name} `);
    let read;
    if (field.repeated || field.type === "map" || (field.type === "message" && depth >= MAX_DEPTH)) {
      const input = document.createElement("textarea");
      input.name = field.name;
      input.rows = 2;
      input.placeholder = field.type === "map" ? "{}" : field.repeated ? "[]" : "{}";
      read = () => (input.value.trim() ? JSON.parse(input.value) : undefined);
      label.append(input);
    } else if (field.type === "message") {
      const inner = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = field.message;
      inner.append(legend);
      const body = document.createElement("div");
      inner.append(body);
      const readInner = buildFields(body, field.message, types, depth + 1);
      read = () => readInner();
      label.append(inner);
    } else if (field.type === "enum") {
      const select = document.createElement("select");
      select.name = field.name;
      for (const name of field.enum) select.append(new Option(name, name));
      read = () => select.value;
      label.append(select);
    } else if (field.type === "bool") {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = field.name;
      read = () => box.checked;
      label.append(box);
    } else {
      const input = document.createElement("input");
      input.name = field.name;
      if (INTEGERS.includes(field.type)) {
        input.type = "number";
        input.step = "1";
      } else if (field.type === "float" || field.type === "double") {
        input.type = "number";
        input.step = "any";
      }
      input.placeholder = field.type;
      read = () => {
        if (input.value === "") return undefined;
        return input.type === "number" ? Number(input.value) : input.value;
      };
      label.append(input);
    }
    container.append(label);
    readers.push([field.name, read]);
  }
  return () => {
    const value = {};
    for (const [name, read] of readers) {
      const got = read();
      if (got !== undefined) value[name] = got;
    }
    return value;
  };
}

// ------------------------------------------------------------------ the observation as a tree

// `value`'s entries; a message's in the order of its .proto fields (`typeName`, when known)
function entriesOf(value, typeName) {
  if (Array.isArray(value)) return value.map((item, i) => [i, item, typeName]);
  const type = typeName && session.project.types[typeName];
  if (!type) return Object.entries(value).map(([key, item]) => [key, item, null]);
  const known = type.fields.filter((f) => f.name in value).map((f) => [f.name, value[f.name], f.message || null]);
  const others = Object.keys(value).filter((key) => !type.fields.some((f) => f.name === key));
  return known.concat(others.map((key) => [key, value[key], null]));
}

function tree(value, typeName = null) {
  if (value === null || typeof value !== "object") {
    const leaf = document.createElement("span");
    leaf.className = `leaf ${typeof value}`;
    leaf.textContent = JSON.stringify(value);
    return leaf;
  }
  const entries = entriesOf(value, typeName);
  if (entries.length === 0) {
    const empty = document.createElement("span");
    empty.className = "leaf";
    empty.textContent = Array.isArray(value) ? "[]" : "{}";
    return empty;
  }
  const list = document.createElement("ul");
  for (const [key, item, itemType] of entries) {
    const row = document.createElement("li");
    const name = document.createElement("span");
    name.className = "key";
    name.textContent = `${key}: `;
    row.append(name, tree(item, itemType));
    list.append(row);
  }
  return list;
}

let observationType = null;

function showObservation(observation) {
  $("observation").replaceChildren(tree(observation, observationType));
}

// ------------------------------------------------------------------ receivers typed by hand

function receivers(text) {
  const parts = text.split(",").map((part) => part.trim()).filter(Boolean);
  const to = parts.map((part) => (/^-?\d+$/.test(part) ? Number(part) : part));
  return to.length === 1 ? to[0] : to;
}

// ------------------------------------------------------------------ the page

function enterLobby() {
  show($("lobby"), true);
  show($("play"), false);
}

function enterTrial(joined) {
  total = 0;
  $("trial-id").textContent = joined.trial_id;
  $("actor").textContent = `${joined.actor_id} (${joined.actor_class})`;
  $("tick").textContent = joined.tick_id;
  $("total").textContent = "0";
  $("log").replaceChildren();
  show($("end"), false);
  show($("end-trial"), true);
  show($("new-trial"), false);
  $("act").disabled = false;
  const share = $("share");
  share.replaceChildren();
  const others = session.project.human_slots.filter((s) => s.actor_id !== joined.actor_id);
  for (const slot of others) {
    const link = document.createElement("a");
    const url = new URL(window.location.href);
    url.search = `?trial=${encodeURIComponent(joined.trial_id)}&actor=${slot.actor_id}`;
    link.href = url.href;
    link.target = "_blank";
    link.textContent = `join as actor ${slot.actor_id} (${slot.actor_class}) in another tab`;
    share.append(link, " ");
  }
  const actorClass = session.project.actor_classes.find((c) => c.id === joined.actor_class);
  observationType = actorClass ? actorClass.observation : null;
  if (actorClass) {
    $("action-type").textContent = actorClass.action;
    readAction = buildFields($("action-fields"), actorClass.action, session.project.types);
  }
  showObservation(joined.observation);
  show($("lobby"), false);
  show($("play"), true);
}

let readAction = () => ({});

async function run() {
  try {
    session = await connect();
  } catch (error) {
    $("status").textContent = "not connected";
    problem(error.message);
    return;
  }
  const project = session.project;
  $("status").textContent = `connected · session ${session.sessionId.slice(0, 8)}`;
  const defaultClass = project.human_slots.length ? project.human_slots[0].actor_class : null;
  for (const actorClass of project.actor_classes) {
    $("start-class").append(new Option(actorClass.id, actorClass.id, false, actorClass.id === defaultClass));
    $("join-class").append(new Option(actorClass.id, actorClass.id));
  }
  const configFields = $("config-fields");
  const readConfig = project.trial_config
    ? buildFields(configFields, project.trial_config, project.types)
    : null;
  const legend = document.createElement("legend");
  legend.textContent = `trial config (${project.trial_config})`;
  configFields.prepend(legend);
  show(configFields, Boolean(readConfig));

  session.on("joined", enterTrial);
  session.on("tick", (tick) => {
    $("tick").textContent = tick.tick_id;
    showObservation(tick.observation);
  });
  session.on("reward", (reward, tick) => {
    total += reward.value;
    $("total").textContent = total.toFixed(2);
    log(`tick ${tick.tick_id}: reward ${reward.value.toFixed(2)} from ${reward.feedbacks.length} feedback(s)`, "reward");
  });
  session.on("message", (message) => {
    log(`message from actor ${message.sender_id}: ${JSON.stringify(message.payload)}`, "message");
  });
  session.on("end", (end) => {
    $("end-reason").textContent = end.reason;
    show($("end"), true);
    show($("end-trial"), false);
    show($("new-trial"), true);
    $("act").disabled = true;
    log(`the trial is over: ${end.reason}`, "end");
  });
  session.on("error", (error) => problem(`${error.code}: ${error.message}`));
  session.on("close", (info) => {
    $("status").textContent = info.reconnecting ? "reconnecting…" : "disconnected";
  });
  session.on("reconnect", () => {
    $("status").textContent = `connected · session ${session.sessionId.slice(0, 8)}`;
  });

  const attempt = async (action) => {
    problem("");
    try {
      return await action();
    } catch (error) {
      problem(error.code ? `${error.code}: ${error.message}` : error.message);
      return null;
    }
  };
  $("start-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(() => session.start({ actorClass: $("start-class").value, config: readConfig ? readConfig() : undefined }));
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(() =>
      session.join({
        trialId: $("join-trial").value.trim(),
        actorId: Number($("join-actor").value),
        actorClass: $("join-class").value || undefined,
      }),
    );
  });
  $("act-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("act").disabled = true;
    await attempt(() => session.act(readAction()));
    $("act").disabled = Boolean(session.ended);
  });
  $("end-trial").addEventListener("click", () => attempt(() => session.end()));
  $("new-trial").addEventListener("click", enterLobby);
  $("message-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const payload = JSON.parse($("message-payload").value);
      await session.message({ to: receivers($("message-to").value), payload });
      log(`you sent ${JSON.stringify(payload)}`, "sent");
    });
  });
  $("feedback-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const value = Number($("feedback-value").value);
      await session.feedback({ to: receivers($("feedback-to").value), value });
      log(`you gave feedback ${value}`, "sent");
    });
  });

  const params = new URLSearchParams(window.location.search);
  if (session.trial) {
    enterTrial(session.trial); // a reloaded page joined its slot again
  } else if (params.has("trial")) {
    $("join-trial").value = params.get("trial");
    $("join-actor").value = params.get("actor") || "0";
    enterLobby();
    $("join-form").requestSubmit();
  } else {
    enterLobby();
  }
}

run();
