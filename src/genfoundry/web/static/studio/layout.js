// Components every page has: the top bar (menu on narrow screens, theme switch) and the "needs a key" banner.
"use strict";
document.addEventListener("alpine:init", () => {
  window.Alpine.data("layout", () => ({
    menuOpen: false,
    toggleMenu() {
      this.menuOpen = !this.menuOpen;
    },
    toggleTheme() {
      const root = document.documentElement;
      root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
      localStorage.setItem("genfoundry.theme", root.dataset.theme);
    },
  }));

  window.Alpine.data("authBanner", () => ({
    needsKey: false,
    init() {
      window.addEventListener("studio:auth", (event) => {
        this.needsKey = event.detail.needsKey && window.location.pathname !== "/settings";
      });
      // Without a key in this tab, ask once whether the server needs one (single-user mode does not).
      if (!window.studio.key()) window.studio.get("/v1/models").catch(() => {});
    },
  }));
});
