"""MQTT publisher peer with paho-mqtt, the original Python system's client: publishes every line of
a file (`<topic> <json payload>`) at the given QoS with at most `inflight` messages unacknowledged,
waits until every one is acknowledged (QoS 1) or written (QoS 0), and prints
`published N in S s (R/s)`, timed from the first publish to the last acknowledgement (the
interpreter's start-up and the file read are not counted, as for the other contenders).
Usage: python paho_publish.py HOST PORT QOS INFLIGHT FILE"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

host, port, qos, inflight, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with open(path, "rb") as f:
    messages = [line.rstrip(b"\n").split(b" ", 1) for line in f if line.strip()]

done = threading.Event()
acked = 0
connected = threading.Event()


def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code != 0:
        sys.exit(f"connect refused: {reason_code}")
    connected.set()


def on_publish(client, userdata, mid, reason_code, properties):
    global acked
    acked += 1
    if acked == len(messages):
        done.set()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{time.time_ns()}", clean_session=True)
client.max_inflight_messages_set(inflight)
client.max_queued_messages_set(0)
client.on_connect = on_connect
client.on_publish = on_publish
client.connect(host, port, keepalive=60)
client.loop_start()
if not connected.wait(10):
    sys.exit("no CONNACK within 10 s")
start = time.perf_counter()
for topic, payload in messages:
    client.publish(topic.decode(), payload, qos=qos)
if not done.wait(600):
    sys.exit(f"only {acked} of {len(messages)} acknowledged within 600 s")
elapsed = time.perf_counter() - start
client.disconnect()
client.loop_stop()
print(f"published {len(messages)} in {elapsed:.3f} s ({len(messages) / elapsed:.0f}/s)")
