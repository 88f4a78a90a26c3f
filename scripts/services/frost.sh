# FROST-Server (OGC SensorThings API v1.0/v1.1) on http://127.0.0.1:8090/FROST-Server/v1.1, stored in
# PostgreSQL/PostGIS (postgres.sh, 127.0.0.1:5432). MQTT is disabled (no listener on 1883).
# Sourced by services.sh; see lib.sh for the helpers.
#
# Why no Tomcat: the Maven Central this bench reaches holds FROST-Server's core artifacts
# (FROST-Server.Core, .SQLjooq, .Plugin.CoreModel, version 2.0.0 is the newest complete set) but neither
# the FROST-Server.HTTP war nor FROST-Server.HTTP.Common (the servlets). frost/FrostBenchServer.java is a
# ~150-line HTTP adapter on the JDK's built-in server that hands each request to FROST's own Service
# class: URL and query parsing, JSON, validation and the PostGIS persistence are FROST's real code.
# It is compiled once and cached in $BENCH_CACHE/frost (keyed by source and classpath).
#
# Plugins: the core model, the default result format, and the DataArray format
# (FROST-Server.Plugin.FormatDataArray, which brings .Plugin.MultiDatastream as a dependency, left
# disabled): it serves `POST /v1.1/CreateObservations`, the bulk write the SensorThings sink uses.
#
# Settings are FROST's usual environment variables (dots become underscores): serviceRootUrl,
# persistence_* (schema created by Liquibase at start-up, persistence_autoUpdateDatabase=true).

SVC_DEPS=(postgres)
SVC_READY_TIMEOUT=150
FROST_VERSION=2.0.0
FROST_PORT=8090
FROST_ROOT="http://127.0.0.1:$FROST_PORT/FROST-Server"
FROST_DB_PASSWORD="frost-bench-pw" # = PG_FROST_PASSWORD in postgres.sh (role created there)

frost_pom() {
  local g=de.fraunhofer.iosb.ilt.FROST-Server a
  printf '%s\n' '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>' \
    '<groupId>smartcity.bench</groupId><artifactId>frost</artifactId><version>1</version><packaging>pom</packaging>' \
    '<dependencies>'
  for a in FROST-Server.Core FROST-Server.SQLjooq FROST-Server.Plugin.CoreModel FROST-Server.Plugin.FormatDataArray; do
    printf '<dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$g" "$a" "$FROST_VERSION"
  done
  # JDBC driver (`provided` in FROST's own packaging) and a logging binding for FROST's slf4j 1.7.
  printf '%s\n' '<dependency><groupId>org.postgresql</groupId><artifactId>postgresql</artifactId><version>42.7.4</version></dependency>' \
    '<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>' \
    '</dependencies></project>'
}

frost_classpath() { maven_classpath frost "$(frost_pom)"; }

# Compiled adapter classes, cached by the hash of its source and of the classpath.
frost_classes_dir() {
  local src="$REPO_ROOT/scripts/services/frost/FrostBenchServer.java"
  echo "$BENCH_CACHE/frost/classes-$( { cat "$src"; frost_classpath; } | sha256sum | cut -c1-16)"
}

svc_install() {
  command -v java >/dev/null && command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
  command -v mvn >/dev/null || apt_install maven
  command -v curl >/dev/null || apt_install curl
  local cp dir
  cp="$(frost_classpath)"
  dir="$(frost_classes_dir)"
  if [ ! -f "$dir/FrostBenchServer.class" ]; then
    log "compiling the FROST HTTP adapter into $dir"
    rm -rf "$BENCH_CACHE"/frost/classes-* && mkdir -p "$dir.tmp"
    javac -nowarn -d "$dir.tmp" -cp "$cp" "$REPO_ROOT/scripts/services/frost/FrostBenchServer.java" \
      || die "javac failed for scripts/services/frost/FrostBenchServer.java"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
}

svc_start() {
  require_port_free "$FROST_PORT"
  rm -rf "$BENCH_DATA/frost" && mkdir -p "$BENCH_DATA/frost"
  # Liquibase logs through java.util.logging, one INFO line per change set: keep warnings only.
  printf 'handlers=java.util.logging.ConsoleHandler\n.level=WARNING\n' > "$BENCH_DATA/frost/logging.properties"
  local cp
  cp="$(frost_classes_dir):$(frost_classpath)"
  # FROST's own slf4j logging: warnings and errors only. No CORS headers (Tomcat's CorsFilter did that).
  start_bg frost env \
    FROST_BENCH_BIND="127.0.0.1:$FROST_PORT" \
    serviceRootUrl="$FROST_ROOT" \
    plugins_coreModel_enable=true \
    persistence_db_driver=org.postgresql.Driver \
    persistence_db_url="jdbc:postgresql://127.0.0.1:5432/frost" \
    persistence_db_username=frost \
    persistence_db_password="$FROST_DB_PASSWORD" \
    persistence_autoUpdateDatabase=true \
    mqtt_Enabled=false \
    java -Xmx512m -XX:+UseSerialGC -Djava.io.tmpdir="$BENCH_DATA/frost" -Dsun.net.httpserver.nodelay=true \
      -Djava.util.logging.config.file="$BENCH_DATA/frost/logging.properties" \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -cp "$cp" FrostBenchServer
}

svc_ready() {
  # Service document (listing the DataArray conformance class: the plugin loaded), then a collection:
  # the second one needs the schema Liquibase created.
  curl -fsS --max-time 5 "$FROST_ROOT/v1.1" | grep -q '/req/data-array/data-array' \
    && curl -fsS --max-time 5 -o /dev/null "$FROST_ROOT/v1.1/Things"
}

svc_env() {
  echo "BENCH_FROST_URL=$FROST_ROOT/v1.1"
}
