// Queues (names, disposition codes), for supervisors the agent list, and the canned responses
// offered to this user: read once per session and refreshed on demand; they change rarely.
import { api } from "./api.js";

let queues = null;
let agents = null;
let canned = null;
let directory = null; // id → { id, name, role, team }

export async function loadQueues(force = false) {
  if (!queues || force) queues = (await api.get("/queues")).queues;
  return queues;
}

export function queueById(id) { return queues?.find((q) => q.id === id) || null; }

export async function loadAgents(force = false) {
  if (!agents || force) agents = (await api.get("/agents")).agents;
  return agents;
}

export async function loadCanned(force = false) {
  if (!canned || force) canned = (await api.get("/canned")).canned;
  return canned;
}

// Colleagues by id, for everyone (owners on a customer card, the board's agent names).
export async function loadDirectory(force = false) {
  if (!directory || force) directory = new Map((await api.get("/directory")).users.map((u) => [u.id, u]));
  return directory;
}

export function userName(id) { return directory?.get(id)?.name ?? null; }

export function forgetDirectory() { queues = null; agents = null; canned = null; directory = null; }
