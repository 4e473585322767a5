/** The browser app's entry: routes to pages, sign-in and sign-out, showing the current page. */
import "./style.css";
import { ApiError, onUnauthorized } from "./api.js";
import { forgetToken, storedToken } from "./auth.js";
import { h, link, message } from "./dom.js";
import { LiveFeed } from "./live.js";
import { dashboard } from "./pages/dashboard.js";
import { datasetPage, datasetsPage } from "./pages/datasets.js";
import { errorsPage } from "./pages/errors.js";
import { factoriesPage } from "./pages/factories.js";
import { incidentsPage } from "./pages/incidents.js";
import { jobPage } from "./pages/job.js";
import { jobsPage } from "./pages/jobs.js";
import { loginPage } from "./pages/login.js";
import { pilotsPage } from "./pages/pilots.js";
import { sitePage, sitesPage } from "./pages/sites.js";
import { subscriptionsPage } from "./pages/subscriptions.js";
import { summaryPage } from "./pages/summary.js";
import { taskPage } from "./pages/task.js";
import { parseRoute, type Route, type View } from "./view.js";

function pageFor(root: HTMLElement, route: Route): Promise<View> | View {
  const [name = "", id] = route.path;
  if (name === "" || name === "dashboard") return dashboard(root);
  if (name === "jobs") return jobsPage(root, route);
  if (name === "job" && id) return jobPage(root, id);
  if (name === "task" && id) return taskPage(root, id);
  if (name === "datasets") return datasetsPage(root, route);
  if (name === "dataset" && id) return datasetPage(root, id);
  if (name === "sites") return sitesPage(root);
  if (name === "site" && id) return sitePage(root, id);
  if (name === "factories") return factoriesPage(root);
  if (name === "summary") return summaryPage(root, route);
  if (name === "errors") return errorsPage(root, route);
  if (name === "subscriptions") return subscriptionsPage(root, route);
  if (name === "incidents") return incidentsPage(root, route);
  if (name === "pilots") return pilotsPage(root, route);
  root.replaceChildren(message(`no page ${location.hash}`, "error"));
  return {};
}

const statusDot = h("span", { id: "live-status", class: "live-status" }, "connecting");
const signOut = h(
  "a",
  {
    href: "#",
    id: "sign-out",
    class: "sign-out",
    onclick: (event: Event) => {
      event.preventDefault();
      forgetToken();
      signedInChanged();
    },
  },
  "sign out",
);
const header = document.getElementById("top")!;
header.replaceChildren(
  h(
    "nav",
    {},
    h("strong", {}, "panda-actors"),
    link("/", "Dashboard"),
    link("/summary", "Summary"),
    link("/errors", "Errors"),
    link("/jobs", "Jobs"),
    link("/sites", "Sites"),
    link("/pilots", "Pilots"),
    link("/factories", "Factories"),
    link("/datasets", "Datasets"),
    link("/subscriptions", "Subscriptions"),
    link("/incidents", "Incidents"),
    statusDot,
    signOut,
  ),
);
const root = document.getElementById("view")!;

let current: View = {};
let generation = 0;
/** Set while the login form is up: the page under it is gone, and further 401s change nothing. */
let loggingIn = false;

function showSignOut(): void {
  signOut.hidden = storedToken() === null;
}

/** The server asked for a token or refused ours: the login form replaces the page until one is accepted. */
function askForToken(reason: string): void {
  if (loggingIn) return;
  loggingIn = true;
  current.dispose?.();
  current = {};
  generation++;
  loginPage(root, reason, signedInChanged);
}

/** A token was stored or forgotten: the stream and the page start over with it. */
function signedInChanged(): void {
  loggingIn = false;
  showSignOut();
  live.restart();
  void show();
}

const live = new LiveFeed(
  "/api/v1/events",
  (status) => {
    statusDot.textContent = status;
    statusDot.dataset.status = status;
  },
  askForToken,
);
onUnauthorized(askForToken);

/** Shows the page the fragment names; a newer navigation wins over a slower older one. */
async function show(): Promise<void> {
  current.dispose?.();
  current = {};
  const mine = ++generation;
  const route = parseRoute(location.hash);
  for (const a of header.querySelectorAll("a"))
    a.classList.toggle("active", a.getAttribute("href") === `#/${route.path[0] ?? ""}`);
  try {
    const view = await pageFor(root, route);
    if (mine === generation) current = view;
    else view.dispose?.();
  } catch (err) {
    if (mine !== generation || loggingIn) return;
    const text =
      err instanceof ApiError && err.status === 404
        ? err.message
        : `could not load: ${(err as Error).message}`;
    root.replaceChildren(message(text, "error"));
  }
}

live.subscribe((m) => current.onLive?.(m));
window.addEventListener("hashchange", () => {
  // Navigating away from the login form tries again (an open server, or a token pasted in another way).
  loggingIn = false;
  void show();
});
showSignOut();
live.start();
void show();
