// Applies the look a person chose (theme, text size) before the page paints. The choice is kept
// in this browser's localStorage (never sent to the server, no cookie); without it the page
// follows the system's light or dark setting.
(() => {
  try {
    const root = document.documentElement;
    const theme = localStorage.getItem('meshwork.theme');
    const size = localStorage.getItem('meshwork.size');
    if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
    if (size === 'large') root.dataset.size = size;
  } catch (_) {
    // Storage refused (a private window's policy): the system's look it is.
  }
})();
