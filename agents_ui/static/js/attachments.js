// An email's attachments under its message. A file is fetched with the agent's token and
// saved through a blob link: it is never opened as a page of ours (the server also sends it
// as a download, with a harmless type).
import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

function size(bytes) {
  if (bytes < 1024) return t("size.bytes", { n: bytes });
  if (bytes < 1024 * 1024) return t("size.kb", { n: (bytes / 1024).toFixed(1) });
  return t("size.mb", { n: (bytes / 1024 / 1024).toFixed(1) });
}

export async function listAttachments(contactId) {
  return (await api.get(`/contacts/${contactId}/attachments`)).attachments;
}

async function save(attachment, error) {
  error.textContent = "";
  try {
    const res = await fetch(`/api/v1/attachments/${attachment.id}`, { headers: { Authorization: `Bearer ${api.token}` } });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    const url = URL.createObjectURL(await res.blob());
    const link = h("a", { href: url, download: attachment.filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  } catch (e) {
    error.textContent = e.message;
  }
}

export function attachmentList(attachments) {
  const error = h("span", { class: "error", role: "alert" });
  return h("div", { class: "attachments" },
    h("ul", {}, attachments.map((a) => h("li", {},
      h("button", { class: "link attachment", type: "button", dataset: { attachmentId: a.id },
        title: t("attachment.download"), onclick: () => save(a, error) }, a.filename),
      " ", h("span", { class: "muted" }, size(a.size))))),
    error);
}
