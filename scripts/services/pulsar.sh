# Apache Pulsar 4.0.x standalone (one broker + one in-process bookie, metadata in RocksDB), from Maven Central.
#   127.0.0.1:6650  Pulsar binary protocol (BENCH_PULSAR_URL)
#   127.0.0.1:8081  admin REST API / web service (BENCH_PULSAR_ADMIN_URL)
#   127.0.0.1:3181  the in-process bookie (internal)
# Token authentication and authorization are on; a client without a token is the superuser (see
# pulsar_auth below). BENCH_PULSAR_TEST_TOKEN_FILE holds the token of the role `smartcity-test`.
# Sourced by services.sh. Jars: a generated POM resolved by maven_classpath (cached in $BENCH_CACHE/maven and ~/.m2,
# ~300 MB); data in $BENCH_DATA/pulsar, wiped at each start except under `services.sh restart pulsar`
# (BENCH_KEEP_DATA=1: topics, subscriptions and unacknowledged messages survive, as after a real broker restart).
# Non-obvious settings:
#   - org.apache.pulsar.PulsarStandaloneStarter lives in pulsar-broker; log4j2 (core + slf4j2 binding, the versions
#     Pulsar 4.0's parent POM uses) is added because the broker jar brings only the slf4j API.
#   - -nfw / -nss: no functions worker, no stream storage (neither is used; both cost memory and start time).
#   - ensemble/write/ack quorum 1: there is only one bookie (the defaults are 2 and would block every write).
#   - JVM flags copied from Pulsar's own bin/pulsar launcher (--add-opens for Netty, checksums, RocksDB, oshi)
#     and the BookKeeper metadata drivers that make the bookie use Pulsar's metadata store.

PULSAR_VERSION="4.0.7"   # 4.0.8 on Central lacks two of its own modules (jetcd-core-shaded, pulsar-opentelemetry)
SVC_READY_TIMEOUT=180

pulsar_pom() {
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>smartcity.bench</groupId>
  <artifactId>pulsar-standalone</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar-broker</artifactId><version>$PULSAR_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.23.1</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.23.1</version></dependency>
  </dependencies>
</project>
EOF
}

svc_install() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  command -v curl >/dev/null || apt_install curl
  command -v openssl >/dev/null || apt_install openssl
  maven_classpath pulsar "$(pulsar_pom)" >/dev/null
}

svc_start() {
  stop_pid pulsar   # a start of ours that never became ready
  require_port_free 6650; require_port_free 8081; require_port_free 3181
  local data cp
  cp="$(maven_classpath pulsar "$(pulsar_pom)")"
  data="$(fresh_data_dir pulsar)"
  require_disk_room pulsar "$data" 97
  cat > "$data/standalone.conf" <<'EOF'
clusterName=standalone
advertisedAddress=127.0.0.1
bindAddress=127.0.0.1
brokerServicePort=6650
webServicePort=8081
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
functionsWorkerEnabled=false
webSocketServiceEnabled=false
transactionCoordinatorEnabled=false
# one bookie: every ledger on it
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
# small caches: the machine is shared
managedLedgerCacheSizeMB=64
dbStorage_writeCacheMaxSizeMb=32
dbStorage_readAheadCacheMaxSizeMb=32
dbStorage_rocksDB_blockCacheSize=33554432
# test data is throw-away: no fsync per entry
journalSyncData=false
# The bookie turns read-only when its disk is over 95 % full (the default), and the broker then never
# becomes ready: a CI run on a shared disk failed so. The bench writes a few hundred MB at most, so it
# may run up to 99 %; svc_start refuses to start over 97 % with a message naming the cause.
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.98
diskUsageLwmThreshold=0.98
# the in-process bookie: port 3181 on loopback only. BKCluster uses --bookkeeper-port only when ephemeral
# ports are allowed (otherwise it picks a random port); listeningInterface=lo binds lo's address, not 0.0.0.0.
allowEphemeralPorts=true
listeningInterface=lo
allowLoopback=true
EOF
  pulsar_auth "$data" >> "$data/standalone.conf"
  cat > "$data/log4j2.xml" <<'EOF'
<Configuration status="warn">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="%d{HH:mm:ss.SSS} %-5level [%t] %c{1.} - %msg%n"/></Console></Appenders>
  <Loggers>
    <Logger name="org.apache.pulsar" level="info"/>
    <Root level="warn"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
EOF
  start_bg pulsar java -Xms256m -Xmx1g -XX:MaxDirectMemorySize=1g -XX:+UseG1GC \
    --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED \
    --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED \
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.platform=ALL-UNNAMED \
    -Dio.netty.tryReflectionSetAccessible=true \
    -Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver \
    -Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver \
    -Djava.net.preferIPv4Stack=true -Dpulsar.allocator.exit_on_oom=true \
    -Dlog4j.configurationFile="$data/log4j2.xml" \
    -cp "$cp" org.apache.pulsar.PulsarStandaloneStarter \
    -c "$data/standalone.conf" -nfw -nss --bookkeeper-port 3181 \
    --metadata-dir "$data/metadata" --bookkeeper-dir "$data/bookkeeper"
}

# Token authentication and authorization, as production brokers run, with clients that present no
# token taken as the superuser `anonymous`: every test and tool of the bench works without a token,
# and a test that needs credentials the broker can refuse uses the token of the role `smartcity-test`
# (BENCH_PULSAR_TEST_TOKEN_FILE), whose permissions it grants and revokes on a namespace of its own.
# The HS256 key is made at the first start of a data folder; the token is a JWT signed with it
# (header and claims base64url-encoded, HMAC-SHA256 by openssl), as `pulsar tokens create` makes.
pulsar_auth() {
  local data="$1" key="$1/token-secret.key" header claims signature
  if [ ! -s "$key" ]; then
    ( umask 077; head -c 32 /dev/urandom > "$key" )
    header="$(printf '{"alg":"HS256"}' | base64url)"
    claims="$(printf '{"sub":"smartcity-test"}' | base64url)"
    signature="$(printf '%s.%s' "$header" "$claims" |
      openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(od -An -tx1 -v "$key" | tr -d ' \n')" -binary | base64url)"
    ( umask 077; printf '%s.%s.%s' "$header" "$claims" "$signature" > "$data/test-role.token" )
  fi
  cat <<EOF
authenticationEnabled=true
authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken
tokenSecretKey=file://$key
authorizationEnabled=true
anonymousUserRole=anonymous
superUserRoles=anonymous
EOF
}

base64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# Ready means a topic can be served, not only that the admin API answers: the first topic of a fresh
# standalone loads the namespace bundle and opens BookKeeper ledgers, which took over 10 s in a CI run
# and made the first test's producer miss its deadline. Creating (204) or finding (409) a probe topic
# and reading its stats (which loads it on the broker) does that work here, before any test runs.
svc_ready() {
  local admin=http://127.0.0.1:8081/admin/v2 code
  curl -fsS --max-time 5 "$admin/brokers/ready" >/dev/null &&
    curl -fsS --max-time 5 "$admin/namespaces/public/default" >/dev/null || return 1
  code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X PUT "$admin/persistent/public/default/bench-ready")"
  [[ "$code" == 204 || "$code" == 409 ]] &&
    curl -fsS --max-time 30 "$admin/persistent/public/default/bench-ready/stats" >/dev/null
}

svc_env() {
  echo "BENCH_PULSAR_URL=pulsar://127.0.0.1:6650"
  echo "BENCH_PULSAR_ADMIN_URL=http://127.0.0.1:8081"
  echo "BENCH_PULSAR_TEST_TOKEN_FILE=$BENCH_DATA/pulsar/test-role.token"
}
