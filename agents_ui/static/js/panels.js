// Extension points: a view module (the callback worklist, the visits calendar, the board's
// rule sections, the screen-pop's timeline parts) adds itself here, and main.js only imports it.
// Nothing is drawn for an empty list, so the console never shows a placeholder panel.
//   consoleViews: [{ id, label (i18n key), roles: ["agent", …], render(container) }]
//     → extra tabs in the top bar, e.g. "callbacks" for the worklist.
//   boardSections: [{ id, render(container, stats) }] → sections below the live board.
//   timelineSources: [async (customerId, pop) => Node | null] → more history in the screen-pop
//     (`pop` is the store entry with the offer's `timeline`, or null outside a contact).
//   contactPanels: [{ channel, render(entry) → Node }] → drawn above the composer of a contact
//     on that channel, once per workspace (e.g. the callback script and outcome form).
export const consoleViews = [];
export const boardSections = [];
export const timelineSources = [];
export const contactPanels = [];
