// Queues (names, disposition codes) and, for supervisors, the agent list: read once per
// session and refreshed on demand; they change rarely.
import { api } from "./api.js";

let queues = null;
let agents = null;

export async function loadQueues(force = false) {
  if (!queues || force) queues = (await api.get("/queues")).queues;
  return queues;
}

export function queueById(id) { return queues?.find((q) => q.id === id) || null; }

export async function loadAgents(force = false) {
  if (!agents || force) agents = (await api.get("/agents")).agents;
  return agents;
}

export function forgetDirectory() { queues = null; agents = null; }
