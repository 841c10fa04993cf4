// Transfer a contact to a queue, or (for supervisors, who can list agents) to one agent.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { loadAgents, loadQueues } from "./queues.js";
import { store } from "./store.js";

export async function transferForm(entry, send, onDone) {
  const c = entry.contact;
  const queues = await loadQueues();
  const canListAgents = store.me.role !== "agent";
  const agents = canListAgents ? (await loadAgents(true)).filter((a) => a.id !== store.me.id) : [];
  const target = h("select", { name: "target", "aria-label": t("transfer.to") },
    h("optgroup", { label: t("transfer.queues") },
      queues.filter((q) => q.active && q.channels.includes(c.channel))
        .map((q) => h("option", { value: `queue:${q.id}` }, q.name))),
    agents.length ? h("optgroup", { label: t("transfer.agents") },
      agents.map((a) => h("option", { value: `agent:${a.id}` },
        `${a.display_name || a.username} (${t(`status.${a.status}`)})`))) : null);
  return h("form", { class: "transfer", onsubmit: (ev) => {
    ev.preventDefault();
    const [kind, id] = target.value.split(":");
    send({ type: "transfer", contact_id: c.id, [kind === "queue" ? "queue_id" : "agent_id"]: Number(id) });
    onDone();
  } },
  h("label", {}, h("span", {}, t("transfer.to")), target),
  h("button", { type: "submit" }, t("transfer.submit")),
  h("button", { type: "button", onclick: onDone }, t("cancel")));
}
