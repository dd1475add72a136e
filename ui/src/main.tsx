// Entry point of the web console: PatternFly's styles (fonts included, no external requests),
// the saved theme, then the app.
import "@patternfly/patternfly/patternfly.css";
import "@patternfly/patternfly/patternfly-addons.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app/App.tsx";
import { applySavedTheme } from "./app/theme.ts";

applySavedTheme();
const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root element");
createRoot(root).render(<StrictMode><App /></StrictMode>);
