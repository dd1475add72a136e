// A small router over the History API: the pages of the console are plain paths (/nodes,
// /users…), so a reload or a link opened on another node lands on the same page (the server
// answers unknown non-API paths with index.html).
import { useEffect, useState } from "react";

const navigateEvent = "trivet:navigate";

export function navigate(path: string): void {
  if (path === window.location.pathname) return;
  window.history.pushState(null, "", path);
  window.dispatchEvent(new Event(navigateEvent));
}

/** The current path, re-rendering on navigate() and on the browser's back/forward. */
export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const update = () => setPath(window.location.pathname);
    window.addEventListener("popstate", update);
    window.addEventListener(navigateEvent, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(navigateEvent, update);
    };
  }, []);
  return path;
}
