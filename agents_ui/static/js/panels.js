// Places for the views that need APIs still being built (issue 4): the callback worklist, the
// visits calendar, complaints, and the supervisor's callback compliance, overdue tasks, A/B
// coverage gaps, tier movements and greeting runs.
//
// A module adds itself here when its API exists; nothing is drawn for an empty list, so the
// console never shows a placeholder panel or invented numbers.
//   consoleViews: [{ id, label (i18n key), roles: ["agent", …], render(container) }]
//     → extra tabs in the top bar, e.g. "callbacks" for the worklist.
//   boardSections: [{ id, render(container, stats) }] → sections below the live board.
//   timelineSources: [async (customerId, pop) => Node | null] → more history in the screen-pop
//     (`pop` is the store entry with the offer's `timeline`, or null outside a contact).
export const consoleViews = [];
export const boardSections = [];
export const timelineSources = [];
