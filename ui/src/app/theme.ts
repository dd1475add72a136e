// Light or dark theme: PatternFly 6 switches on the pf-v6-theme-dark class of <html>. The
// choice is kept per browser; without one, the system preference decides.
const themeKey = "trivet.theme";
const darkClass = "pf-v6-theme-dark";

export function isDark(): boolean {
  return document.documentElement.classList.contains(darkClass);
}

export function setDark(dark: boolean): void {
  document.documentElement.classList.toggle(darkClass, dark);
  localStorage.setItem(themeKey, dark ? "dark" : "light");
}

export function applySavedTheme(): void {
  const saved = localStorage.getItem(themeKey);
  const dark = saved ? saved === "dark" : window.matchMedia?.("(prefers-color-scheme: dark)").matches === true;
  document.documentElement.classList.toggle(darkClass, dark);
}
