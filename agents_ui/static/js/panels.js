// Places for the views that need APIs still being built (issue 4): the callback worklist, the
// visits calendar, complaints, and the supervisor's callback compliance, overdue tasks, A/B
// coverage gaps, tier movements and greeting runs.
//
// A module adds itself here when its API exists; nothing is drawn for an empty list, so the
// console never shows a placeholder panel or invented numbers.
//   consoleViews: [{ id, label (i18n key), roles: ["agent", …], render(container) }]
//     → extra tabs in the top bar, e.g. "callbacks" for the worklist.
//   boardSections: [{ id, render(container, stats) }] → sections below the live board.
//   timelineSources: [async (customerId) => Node | null] → more history in the screen-pop.
//   contactPanels: [{ channel, render(entry) → Node }] → drawn above the composer of a contact
//     on that channel, once per workspace (e.g. the callback script and outcome form).
export const consoleViews = [];
export const boardSections = [];
export const timelineSources = [];
export const contactPanels = [];
