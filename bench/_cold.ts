const rss = (pid: number) => (Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1]) / 1024).toFixed(1);
for (const [name, script, env] of [["raw", "bench/raw_server.ts", {}], ["duplex", "bench/duplex_server.ts", { SCHEMAS: "plain" }]] as const) {
  const port = 18950 + (name === "raw" ? 0 : 1);
  const child = new Deno.Command(Deno.execPath(), { args: ["run", "-A", "--lock=deno.dev.lock", script], env: { ...env, PORT: String(port) }, stdout: "piped" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = ""; while (!out.includes("ready")) out += (await reader.read()).value;
  const steps = [`ready ${rss(child.pid)}`];
  await new Promise((r) => setTimeout(r, 300));
  steps.push(`idle ${rss(child.pid)}`);
  const res = await fetch(`http://127.0.0.1:${port}/healthz`); await res.body?.cancel();
  steps.push(`healthz ${rss(child.pid)}`);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`); await new Promise((r) => ws.onopen = r);
  steps.push(`101 ${rss(child.pid)}`);
  ws.close(); await new Promise((r) => ws.onclose = r);
  console.log(name, steps.join(" | "));
  child.kill("SIGKILL"); await child.status; reader.releaseLock(); await child.stdout.cancel().catch(() => {});
}
