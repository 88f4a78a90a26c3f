# Kafka REST proxy on 127.0.0.1:8082 (Confluent REST Proxy v2 style: /topics, /consumers), in front of the
# bench Kafka (SVC_DEPS=kafka, PLAINTEXT 127.0.0.1:9092).
#
# DEVIATION from services.md: the Strimzi Kafka Bridge (io.strimzi:kafka-bridge) is NOT on Maven Central
# (no maven-metadata.xml nor POM for any version there), Confluent's kafka-rest is not there either and
# Karapace is not on PyPI, so no real REST proxy can be installed from the registries this project may use.
# This script runs a small stand-in instead: scripts/services/kafka-bridge/KafkaRestBridge.java, the subset
# of the Confluent v2 API the project's kafka_rest connector needs (its header lists the endpoints and the
# choices made), over the official Kafka Java client. It is compiled once with javac against a tiny
# Maven classpath (kafka-clients + jackson-databind + slf4j-simple) and cached by source hash.
# It is only as faithful as our reading of the Confluent v2 reference: a green test against it does not
# prove compatibility with a real Confluent/Strimzi/Redpanda proxy.
#
# Readiness: GET /topics answers a JSON array, which the stand-in fetches from the broker (Admin
# listTopics), so "ready" means HTTP is up AND Kafka answers.

SVC_DEPS=(kafka)
SVC_READY_TIMEOUT=60
BRIDGE_PORT=8082
BRIDGE_SRC="$REPO_ROOT/scripts/services/kafka-bridge/KafkaRestBridge.java"
# Basic-auth users (user:password lines), read at every request: tests add and change theirs at runtime.
BRIDGE_USERS="$BENCH_DATA/kafka-bridge/users"

bridge_pom() {
  cat <<'EOF'
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>smartcity.bench</groupId><artifactId>kafka-rest-bridge</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>3.9.1</version></dependency>
    <dependency><groupId>com.fasterxml.jackson.core</groupId><artifactId>jackson-databind</artifactId><version>2.16.2</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
}

bridge_classpath() { maven_classpath kafka-bridge "$(bridge_pom)"; }

# bridge_classes: folder of the compiled stand-in, compiled when the source or classpath changed.
bridge_classes() {
  local cp hash dir
  cp="$(bridge_classpath)"
  hash="$( { cat "$BRIDGE_SRC"; printf '%s' "$cp"; } | sha256sum | cut -c1-16)"
  dir="$BENCH_CACHE/kafka-bridge/classes-$hash"
  if [ ! -f "$dir/KafkaRestBridge.class" ]; then
    log "compiling the Kafka REST bridge stand-in"
    rm -rf "$BENCH_CACHE/kafka-bridge"/classes-*   # older builds of the stand-in
    mkdir -p "$dir.tmp"
    javac -nowarn -d "$dir.tmp" -cp "$cp" "$BRIDGE_SRC" >&2 || { rm -rf "$dir.tmp"; die "javac failed on $BRIDGE_SRC"; }
    rm -rf "$dir"; mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

svc_install() {
  command -v curl >/dev/null || apt_install curl
  command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
  command -v mvn >/dev/null || apt_install maven
  bridge_classes >/dev/null
}

svc_start() {
  stop_pid kafka-bridge   # a recorded but unready bridge of ours: replace it
  require_port_free "$BRIDGE_PORT"
  local classes cp
  classes="$(bridge_classes)"
  cp="$(bridge_classpath)"
  mkdir -p "$(dirname "$BRIDGE_USERS")"
  : > "$BRIDGE_USERS"
  # slf4j-simple: warnings and errors only (the Kafka clients are chatty at INFO).
  start_bg kafka-bridge java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dsun.net.httpserver.nodelay=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$classes:$cp" KafkaRestBridge 127.0.0.1:9092 127.0.0.1 "$BRIDGE_PORT" "$BRIDGE_USERS"
}

svc_ready() {
  curl -fsS -m 10 "http://127.0.0.1:$BRIDGE_PORT/topics" | grep -q '^\['
}

svc_env() {
  echo "BENCH_KAFKA_REST_URL=http://127.0.0.1:$BRIDGE_PORT"
  echo "BENCH_KAFKA_REST_USERS=$BRIDGE_USERS"
}
