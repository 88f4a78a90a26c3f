// MQTT publisher peer with MQTT.js: publishes every line of a file (`<topic> <json payload>`) at the
// given QoS with at most INFLIGHT messages unacknowledged (MQTT.js itself has no such bound: without
// one it queues the whole file in memory at once), waits until every one is acknowledged (QoS 1) or
// written (QoS 0), and prints `published N in S s (R/s)`, timed from the first publish to the last
// callback (start-up and the file read not counted, as for the other contenders).
// Usage: NODE_PATH=... node mqttjs_publish.js HOST PORT QOS INFLIGHT FILE
const fs = require("fs");
const mqtt = require("mqtt");

const [host, port, qos, inflight, path] = process.argv.slice(2);
const messages = fs
  .readFileSync(path)
  .toString("utf8")
  .split("\n")
  .filter((l) => l.length > 0)
  .map((l) => {
    const i = l.indexOf(" ");
    return [l.slice(0, i), l.slice(i + 1)];
  });

const client = mqtt.connect({
  host,
  port: Number(port),
  clientId: `bench-mqttjs-${process.hrtime.bigint()}`,
  clean: true,
  reconnectPeriod: 0,
});
client.on("error", (e) => {
  console.error(`mqtt error: ${e.message}`);
  process.exit(1);
});
client.on("connect", () => {
  const start = process.hrtime.bigint();
  let next = 0;
  let acked = 0;
  const publishOne = () => {
    const [topic, payload] = messages[next++];
    client.publish(topic, payload, { qos: Number(qos) }, (err) => {
      if (err) {
        console.error(`publish failed: ${err.message}`);
        process.exit(1);
      }
      acked++;
      if (next < messages.length) publishOne();
      if (acked === messages.length) {
        const s = Number(process.hrtime.bigint() - start) / 1e9;
        console.log(`published ${messages.length} in ${s.toFixed(3)} s (${Math.round(messages.length / s)}/s)`);
        client.end();
      }
    });
  };
  for (let i = 0; i < Math.min(Number(inflight), messages.length); i++) publishOne();
});
