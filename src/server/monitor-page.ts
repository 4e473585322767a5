/**
 * The monitor's first page: tasks and jobs, refreshed from the API. Served by
 * the node itself, with nothing fetched from elsewhere.
 */
export function renderMonitor(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>panda-actors monitor</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.failed{color:#b00}.finished,.done{color:#070}
</style></head><body>
<h1>panda-actors</h1>
<h2>Tasks</h2><table id="tasks"><thead><tr><th>task</th><th>state</th><th>user</th><th>type</th><th>jobs</th><th>finished</th><th>failed</th></tr></thead><tbody></tbody></table>
<h2>Jobs</h2><table id="jobs"><thead><tr><th>job</th><th>state</th><th>site</th><th>attempt</th><th>type</th><th>error</th></tr></thead><tbody></tbody></table>
<script>
const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text ?? ""; if (cls) td.className = cls; return td; };
function fill(id, rows) { const body = document.querySelector("#" + id + " tbody"); body.replaceChildren(...rows.map((cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; })); }
async function refresh() {
  const [tasks, jobs] = await Promise.all([fetch("/api/v1/tasks").then((r) => r.json()), fetch("/api/v1/jobs?limit=200").then((r) => r.json())]);
  fill("tasks", tasks.tasks.map((t) => [cell(t.taskId), cell(t.state, t.state), cell(t.user), cell(t.type), cell(String(t.jobCount)), cell(String(t.counts.finished)), cell(String(t.counts.failed))]));
  fill("jobs", jobs.jobs.map((j) => [cell(j.jobId), cell(j.state, j.state), cell(j.site), cell(String(j.attempt)), cell(j.type), cell(j.error ? j.error.class + ": " + j.error.message : "")]));
}
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
}
