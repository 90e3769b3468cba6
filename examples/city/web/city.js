// The city example's page: you drive the car (the trial's human `driver` slot) from the
// browser, through `cogment web` and its JavaScript module. The observation is the city of
// city.proto (deltas already applied by the bridge), drawn on a canvas.
import { connect } from "/cogment.js";

const $ = (id) => document.getElementById(id);
const CELL = 44;
const KEYS = {
  ArrowUp: "UP",
  ArrowDown: "DOWN",
  ArrowLeft: "LEFT",
  ArrowRight: "RIGHT",
  w: "UP",
  s: "DOWN",
  a: "LEFT",
  d: "RIGHT",
  " ": "STAY",
};
const COLORS = ["#e8590c", "#7048e8", "#0c8599", "#c2255c", "#2f9e44", "#f08c00", "#1971c2"];

let session = null;
let city = null; // the latest observation
let score = 0;
let acting = false;

// ------------------------------------------------------------------ drawing

function isRoad(x, y) {
  return y === city.main_street_y || x === city.side_street_x;
}

function draw() {
  const canvas = $("city");
  const g = canvas.getContext("2d");
  g.fillStyle = "#8fbf7a"; // grass and blocks
  g.fillRect(0, 0, canvas.width, canvas.height);
  if (!city) return;
  canvas.width = city.width * CELL;
  canvas.height = city.height * CELL;
  for (let y = 0; y < city.height; y += 1) {
    for (let x = 0; x < city.width; x += 1) {
      g.fillStyle = isRoad(x, y) ? "#4a4f57" : (x + y) % 2 ? "#9ccc86" : "#93c47d";
      g.fillRect(x * CELL, y * CELL, CELL, CELL);
    }
  }
  g.strokeStyle = "#f1f3f5"; // lane markings
  g.setLineDash([8, 8]);
  g.lineWidth = 2;
  g.beginPath();
  const mainY = (city.main_street_y + 0.5) * CELL;
  const sideX = (city.side_street_x + 0.5) * CELL;
  g.moveTo(0, mainY);
  g.lineTo(canvas.width, mainY);
  g.moveTo(sideX, 0);
  g.lineTo(sideX, canvas.height);
  g.stroke();
  g.setLineDash([]);

  const goal = city.goal;
  g.fillStyle = "#ffd43b"; // the goal: a flag
  g.fillRect(goal.x * CELL + 6, goal.y * CELL + 6, CELL - 12, CELL - 12);
  g.fillStyle = "#1d2330";
  g.font = "bold 20px system-ui, sans-serif";
  g.textAlign = "center";
  g.textBaseline = "middle";
  g.fillText("⚑", (goal.x + 0.5) * CELL, (goal.y + 0.5) * CELL);

  for (const pedestrian of city.pedestrians) {
    const { x, y } = pedestrian.position;
    const cx = (x + 0.5) * CELL;
    const cy = (y + 0.5) * CELL;
    g.strokeStyle = "rgba(255,255,255,0.6)"; // where it walks to
    g.setLineDash([3, 4]);
    g.beginPath();
    g.moveTo(cx, cy);
    g.lineTo((pedestrian.target.x + 0.5) * CELL, (pedestrian.target.y + 0.5) * CELL);
    g.stroke();
    g.setLineDash([]);
    g.fillStyle = COLORS[pedestrian.index % COLORS.length];
    g.beginPath();
    g.arc(cx, cy, CELL * 0.32, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = "#fff";
    g.font = "bold 16px system-ui, sans-serif";
    g.fillText(String(pedestrian.index % 10), cx, cy + 1);
  }

  const car = city.car;
  g.fillStyle = "#e03131"; // the car
  roundRect(g, car.x * CELL + 5, car.y * CELL + 9, CELL - 10, CELL - 18, 6);
  g.fillStyle = "#d0ebff";
  g.fillRect(car.x * CELL + CELL - 16, car.y * CELL + 13, 6, CELL - 26);
}

function roundRect(g, x, y, w, h, r) {
  g.beginPath();
  g.moveTo(x + r, y);
  g.arcTo(x + w, y, x + w, y + h, r);
  g.arcTo(x + w, y + h, x, y + h, r);
  g.arcTo(x, y + h, x, y, r);
  g.arcTo(x, y, x + w, y, r);
  g.fill();
}

// ------------------------------------------------------------------ the panel

function showCity(observation) {
  city = observation;
  $("tick").textContent = city.tick;
  $("car").textContent = `(${city.car.x},${city.car.y})`;
  $("collisions").textContent = city.collisions;
  draw();
}

function log(text, kind = "") {
  const item = document.createElement("li");
  item.textContent = text;
  if (kind) item.className = kind;
  $("messages").prepend(item);
}

function problem(text) {
  $("problem").textContent = text || "";
  $("problem").hidden = !text;
}

function outcome() {
  if (city.car.x === city.goal.x && city.car.y === city.goal.y) return "You reached the goal!";
  return `The car stopped at (${city.car.x},${city.car.y}) after ${city.collisions} collision(s)`;
}

function playing(joined) {
  score = 0;
  $("score").textContent = "0.0";
  $("trial-id").textContent = joined.trial_id.slice(0, 8);
  $("end").hidden = true;
  $("messages").replaceChildren();
  $("honk").disabled = false;
  $("thank").disabled = false;
  showCity(joined.observation);
  log(`trial ${joined.trial_id.slice(0, 8)}: you drive, ${city.pedestrians.length} pedestrians walk`, "you");
}

// ------------------------------------------------------------------ acting

async function drive(direction) {
  if (acting || !session.trial || session.ended) return;
  acting = true;
  try {
    await session.act({ direction });
  } catch (error) {
    problem(`${error.code}: ${error.message}`);
  } finally {
    acting = false;
  }
}

async function honk() {
  if (!session.trial || session.ended) return;
  try {
    await session.message({ to: "pedestrian", payload: { "@type": "city.Chat", text: "beep beep!" } });
    log("you honk", "you");
  } catch (error) {
    problem(`${error.code}: ${error.message}`);
  }
}

async function thank() {
  if (!session.trial || session.ended || !city.pedestrians.length) return;
  const distance = (p) => Math.abs(p.position.x - city.car.x) + Math.abs(p.position.y - city.car.y);
  const nearest = city.pedestrians.reduce((a, b) => (distance(b) < distance(a) ? b : a));
  const actor = session.trial.actors.find((a) => a.actor_class === "pedestrian" && a.id_in_class === nearest.index);
  try {
    await session.feedback({ to: actor.actor_id, value: 1 });
    log(`you thank pedestrian ${nearest.index} (+1)`, "you");
  } catch (error) {
    problem(`${error.code}: ${error.message}`);
  }
}

async function start() {
  problem("");
  try {
    await session.start({ actorClass: "driver" });
  } catch (error) {
    problem(`cannot start a trial: ${error.message}`);
  }
}

async function main() {
  draw();
  try {
    session = await connect();
  } catch (error) {
    $("status").textContent = "not connected";
    problem(error.message);
    return;
  }
  $("status").textContent = "connected";
  session.on("joined", playing);
  session.on("observation", showCity);
  session.on("reward", (reward, tick) => {
    score += reward.value;
    $("score").textContent = score.toFixed(1);
    const kind = reward.value < 0 ? "bad" : "reward";
    if (reward.value <= -1 || reward.value >= 2) log(`tick ${tick.tick_id}: reward ${reward.value.toFixed(1)}`, kind);
  });
  session.on("message", (message, tick) => {
    const text = message.payload.text ?? JSON.stringify(message.payload);
    log(`tick ${tick.tick_id}: ${text}`);
  });
  session.on("end", (end) => {
    $("outcome").textContent = outcome();
    $("end-reason").textContent = end.reason;
    $("end").hidden = false;
    $("honk").disabled = true;
    $("thank").disabled = true;
  });
  session.on("error", (error) => problem(`${error.code}: ${error.message}`));
  session.on("close", (info) => {
    $("status").textContent = info.reconnecting ? "reconnecting…" : "disconnected";
  });
  session.on("reconnect", () => {
    $("status").textContent = "connected";
  });

  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key in KEYS) {
      event.preventDefault();
      drive(KEYS[key]);
    } else if (key === "h") {
      honk();
    } else if (key === "t") {
      thank();
    }
  });
  $("honk").addEventListener("click", honk);
  $("thank").addEventListener("click", thank);
  $("again").addEventListener("click", start);

  if (session.trial) playing(session.trial); // a reloaded page: back in its trial
  else await start();
}

main();
