// Test bench stand-in for a Kafka REST proxy: the subset of the Confluent REST Proxy v2 API that the
// project's kafka_rest connector uses, served by the JDK's HTTP server over the official Kafka Java
// client (kafka-clients). Started by scripts/services/kafka-bridge.sh on 127.0.0.1:8082.
//
// Why it exists: no real REST proxy is obtainable from the registries this project may use. The Strimzi
// Kafka Bridge (io.strimzi:kafka-bridge) and Confluent's kafka-rest are not on Maven Central, Karapace is
// not on PyPI. This is NOT a product: it implements only what is listed below, written from the Confluent
// v2 API reference, and its answers to the connector are only as right as that reading.
//
//   GET    /                                               {}  (liveness; /healthy and /ready too)
//   GET    /topics                                         ["name", ...]  (asks the broker: readiness)
//   POST   /topics/{topic}                                 produce; Content-Type
//          application/vnd.kafka.binary.v2+json (key/value base64) or application/vnd.kafka.json.v2+json
//          body {"records":[{"key":..,"value":..,"partition":n?}]}
//          -> {"offsets":[{"partition","offset","error_code","error"}],"key_schema_id":null,"value_schema_id":null}
//   POST   /consumers/{group}                              {"name"?,"format":"binary"|"json","auto.offset.reset"?,
//                                                          "auto.commit.enable"?} -> {"instance_id","base_uri"}
//   POST   /consumers/{group}/instances/{name}/subscription {"topics":[...]}  -> 204
//   GET    /consumers/{group}/instances/{name}/subscription -> {"topics":[...]}
//   DELETE /consumers/{group}/instances/{name}/subscription -> 204
//   GET    /consumers/{group}/instances/{name}/records?timeout=ms&max_bytes=n   Accept must match the format
//          -> [{"topic","key","value","partition","offset"}]
//   POST   /consumers/{group}/instances/{name}/offsets     {"offsets":[{"topic","partition","offset"}]} or no
//          body (= everything returned so far) -> 204
//   DELETE /consumers/{group}/instances/{name}              -> 204
// Errors: {"error_code": <http status * 100 + n>, "message": "..."} as in Confluent v2 (40403 unknown
// consumer instance, 40902 instance exists, 40601 Accept does not match the consumer's format, 415/422).
// Basic authentication (Confluent: authentication.method=BASIC): when a request carries an Authorization
// header, its user:password must be a line of the users file (the 4th argument), read at every request
// so that a test can change a password at runtime; otherwise 401 with WWW-Authenticate and error_code
// 40101. DEVIATION: a request without credentials is let through (a real proxy with BASIC auth refuses
// it), so that the bench's one proxy serves the tests with and without credentials.
// Choices where the reference leaves room: an explicit offset commit stores the offsets as given (Kafka's
// convention: the next offset to read); "auto.commit.enable" defaults to "false"; idle consumer instances
// are closed after 5 minutes (Confluent: consumer.instance.timeout.ms, also 5 minutes).
//
// Run: java -cp <kafka-clients, jackson-databind, slf4j> KafkaRestBridge <bootstrap> <host> <port> [users-file]

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class KafkaRestBridge {
  static final String V2 = "application/vnd.kafka.v2+json";
  static final String BINARY = "application/vnd.kafka.binary.v2+json";
  static final String JSON = "application/vnd.kafka.json.v2+json";
  static final long INSTANCE_IDLE_MS = 5 * 60 * 1000;
  static final ObjectMapper M = new ObjectMapper();

  /** An error answered as {"error_code", "message"}. */
  static final class RestError extends Exception {
    final int status;
    final int code;

    RestError(int status, int code, String message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** One consumer instance; KafkaConsumer is single-threaded, so every use holds the instance's lock. */
  static final class Instance {
    final KafkaConsumer<byte[], byte[]> consumer;
    final boolean binary;
    volatile long lastUsed = System.currentTimeMillis();

    Instance(KafkaConsumer<byte[], byte[]> consumer, boolean binary) {
      this.consumer = consumer;
      this.binary = binary;
    }
  }

  final String bootstrap;
  final String baseUrl;
  java.nio.file.Path usersFile;
  final KafkaProducer<byte[], byte[]> producer;
  final Admin admin;
  final Map<String, Instance> instances = new ConcurrentHashMap<>();

  KafkaRestBridge(String bootstrap, String baseUrl) {
    this.bootstrap = bootstrap;
    this.baseUrl = baseUrl;
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.LINGER_MS_CONFIG, "1");
    p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    producer = new KafkaProducer<>(p);
    Properties a = new Properties();
    a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    admin = Admin.create(a);
  }

  public static void main(String[] args) throws IOException {
    String bootstrap = args[0], host = args[1];
    int port = Integer.parseInt(args[2]);
    KafkaRestBridge bridge = new KafkaRestBridge(bootstrap, "http://" + host + ":" + port);
    if (args.length > 3) bridge.usersFile = java.nio.file.Paths.get(args[3]);
    HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 64);
    server.createContext("/", bridge::handle);
    server.setExecutor(Executors.newFixedThreadPool(16));
    Executors.newSingleThreadScheduledExecutor()
        .scheduleAtFixedRate(bridge::expireIdle, 30, 30, TimeUnit.SECONDS);
    server.start();
    System.out.println("kafka REST bridge (bench stand-in) on " + bridge.baseUrl + " -> " + bootstrap);
  }

  void handle(HttpExchange ex) throws IOException {
    try {
      authenticate(ex);
      route(ex);
    } catch (RestError e) {
      ObjectNode err = M.createObjectNode().put("error_code", e.code).put("message", e.getMessage());
      send(ex, e.status, V2, err);
    } catch (Exception e) {
      e.printStackTrace();
      ObjectNode err = M.createObjectNode().put("error_code", 50002).put("message", "Kafka error: " + e);
      send(ex, 500, V2, err);
    } finally {
      ex.close();
    }
  }

  // See the header: credentials, when given, must be a line of the users file.
  void authenticate(HttpExchange ex) throws IOException, RestError {
    String header = ex.getRequestHeaders().getFirst("Authorization");
    if (header == null || usersFile == null) return;
    String given = "";
    if (header.startsWith("Basic ")) {
      try {
        given = new String(Base64.getDecoder().decode(header.substring(6).trim()), StandardCharsets.UTF_8);
      } catch (IllegalArgumentException e) {
        given = "";
      }
    }
    List<String> users =
        java.nio.file.Files.exists(usersFile) ? java.nio.file.Files.readAllLines(usersFile) : List.of();
    if (given.isEmpty() || !users.contains(given)) {
      ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"kafka-rest\"");
      throw new RestError(401, 40101, "Authentication failed: invalid credentials");
    }
  }

  void route(HttpExchange ex) throws Exception {
    String method = ex.getRequestMethod();
    String[] p = pathParts(ex.getRequestURI());
    if (p.length == 0 || (p.length == 1 && (p[0].equals("healthy") || p[0].equals("ready")))) {
      if (!method.equals("GET")) throw new RestError(405, 40501, "HTTP 405 Method Not Allowed");
      send(ex, 200, V2, M.createObjectNode());
      return;
    }
    if (p[0].equals("topics")) {
      if (p.length == 1 && method.equals("GET")) {
        ArrayNode names = M.createArrayNode();
        admin.listTopics().names().get(10, TimeUnit.SECONDS).stream().sorted().forEach(names::add);
        send(ex, 200, V2, names);
        return;
      }
      if (p.length == 2 && method.equals("POST")) {
        produce(ex, p[1]);
        return;
      }
    }
    if (p[0].equals("consumers") && p.length >= 2) {
      String group = p[1];
      if (p.length == 2 && method.equals("POST")) {
        createConsumer(ex, group);
        return;
      }
      if (p.length >= 4 && p[2].equals("instances")) {
        String key = group + "/" + p[3];
        Instance inst = instances.get(key);
        if (inst == null) throw new RestError(404, 40403, "Consumer instance not found.");
        inst.lastUsed = System.currentTimeMillis();
        synchronized (inst) {
          if (!instances.containsKey(key)) throw new RestError(404, 40403, "Consumer instance not found.");
          consumerCall(ex, method, p.length == 4 ? "" : p[4], key, inst);
        }
        return;
      }
    }
    throw new RestError(404, 404, "HTTP 404 Not Found");
  }

  void consumerCall(HttpExchange ex, String method, String what, String key, Instance inst)
      throws Exception {
    switch (method + " " + what) {
      case "DELETE ":
        instances.remove(key);
        inst.consumer.close(Duration.ofSeconds(10));
        send(ex, 204, V2, null);
        return;
      case "POST subscription": {
        JsonNode body = body(ex);
        List<String> topics = new ArrayList<>();
        body.path("topics").forEach(t -> topics.add(t.asText()));
        if (topics.isEmpty()) throw new RestError(422, 42202, "A list (of Topics type) or a topic_pattern is required");
        inst.consumer.subscribe(topics);
        send(ex, 204, V2, null);
        return;
      }
      case "GET subscription": {
        ArrayNode topics = M.createArrayNode();
        inst.consumer.subscription().stream().sorted().forEach(topics::add);
        ObjectNode out = M.createObjectNode();
        out.set("topics", topics);
        send(ex, 200, V2, out);
        return;
      }
      case "DELETE subscription":
        inst.consumer.unsubscribe();
        send(ex, 204, V2, null);
        return;
      case "GET records":
        records(ex, inst);
        return;
      case "POST offsets": {
        JsonNode body = body(ex);
        if (!body.has("offsets")) {
          inst.consumer.commitSync(Duration.ofSeconds(30));
        } else {
          Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
          for (JsonNode o : body.get("offsets")) {
            offsets.put(
                new TopicPartition(o.path("topic").asText(), o.path("partition").asInt()),
                new OffsetAndMetadata(o.path("offset").asLong()));
          }
          inst.consumer.commitSync(offsets, Duration.ofSeconds(30));
        }
        send(ex, 204, V2, null);
        return;
      }
      default:
        throw new RestError(404, 404, "HTTP 404 Not Found");
    }
  }

  void produce(HttpExchange ex, String topic) throws Exception {
    String type = contentType(ex);
    boolean binary;
    if (type.equals(BINARY)) binary = true;
    else if (type.equals(JSON)) binary = false;
    else throw new RestError(415, 415, "HTTP 415 Unsupported Media Type (this stand-in accepts " + BINARY + " and " + JSON + ")");
    JsonNode records = body(ex).get("records");
    if (records == null || !records.isArray() || records.isEmpty()) {
      throw new RestError(422, 42201, "Request includes no records");
    }
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (JsonNode r : records) {
      byte[] k = encode(r.get("key"), binary, "key");
      byte[] v = encode(r.get("value"), binary, "value");
      Integer partition = r.hasNonNull("partition") ? r.get("partition").asInt() : null;
      sent.add(producer.send(new ProducerRecord<>(topic, partition, k, v)));
    }
    ArrayNode offsets = M.createArrayNode();
    for (Future<RecordMetadata> f : sent) {
      ObjectNode o = offsets.addObject();
      try {
        RecordMetadata md = f.get(40, TimeUnit.SECONDS);
        o.put("partition", md.partition()).put("offset", md.offset()).putNull("error_code").putNull("error");
      } catch (Exception e) {
        o.putNull("partition").putNull("offset").put("error_code", 50002).put("error", String.valueOf(e.getCause()));
      }
    }
    ObjectNode out = M.createObjectNode();
    out.set("offsets", offsets);
    out.putNull("key_schema_id").putNull("value_schema_id");
    send(ex, 200, V2, out);
  }

  static byte[] encode(JsonNode n, boolean binary, String what) throws RestError {
    if (n == null || n.isNull()) return null;
    if (!binary) {
      try {
        return M.writeValueAsBytes(n);
      } catch (IOException e) {
        throw new RestError(422, 42205, "cannot serialize " + what);
      }
    }
    if (!n.isTextual()) throw new RestError(422, 42205, "binary " + what + " must be a base64 string");
    try {
      return Base64.getDecoder().decode(n.asText());
    } catch (IllegalArgumentException e) {
      throw new RestError(422, 42205, "binary " + what + " is not valid base64");
    }
  }

  void createConsumer(HttpExchange ex, String group) throws Exception {
    JsonNode body = body(ex);
    String name = body.hasNonNull("name") ? body.get("name").asText() : "rest-consumer-" + UUID.randomUUID();
    String format = body.path("format").asText("binary");
    if (!format.equals("binary") && !format.equals("json")) {
      throw new RestError(422, 42204, "Invalid consumer format '" + format + "' (this stand-in has binary and json)");
    }
    String key = group + "/" + name;
    if (instances.containsKey(key)) {
      throw new RestError(409, 40902, "Consumer instance with the specified name already exists.");
    }
    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    c.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, body.path("auto.commit.enable").asText("false"));
    c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, body.path("auto.offset.reset").asText("latest"));
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    Instance inst = new Instance(new KafkaConsumer<>(c), format.equals("binary"));
    if (instances.putIfAbsent(key, inst) != null) {
      inst.consumer.close();
      throw new RestError(409, 40902, "Consumer instance with the specified name already exists.");
    }
    ObjectNode out = M.createObjectNode()
        .put("instance_id", name)
        .put("base_uri", baseUrl + "/consumers/" + group + "/instances/" + name);
    send(ex, 200, V2, out);
  }

  void records(HttpExchange ex, Instance inst) throws Exception {
    String accept = ex.getRequestHeaders().getFirst("Accept");
    String want = inst.binary ? BINARY : JSON;
    if (accept != null && !accept.contains(want) && !accept.contains("*/*")) {
      throw new RestError(406, 40601,
          "The requested embedded data format does not match the deserializer for this consumer instance");
    }
    Map<String, String> q = query(ex.getRequestURI());
    long timeout = Long.parseLong(q.getOrDefault("timeout", "1000"));
    long maxBytes = Long.parseLong(q.getOrDefault("max_bytes", String.valueOf(Long.MAX_VALUE)));
    if (inst.consumer.subscription().isEmpty()) {
      throw new RestError(409, 40903, "Consumer is not subscribed to any topics");
    }
    ConsumerRecords<byte[], byte[]> polled = inst.consumer.poll(Duration.ofMillis(timeout));
    ArrayNode out = M.createArrayNode();
    long bytes = 0;
    Map<TopicPartition, Long> rewind = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> r : polled) {
      TopicPartition tp = new TopicPartition(r.topic(), r.partition());
      if (rewind.containsKey(tp)) continue;
      long size = (r.key() == null ? 0 : r.key().length) + (r.value() == null ? 0 : r.value().length);
      if (!out.isEmpty() && bytes + size > maxBytes) {
        rewind.put(tp, r.offset()); // over max_bytes: hand it out on the next request
        continue;
      }
      bytes += size;
      ObjectNode o = out.addObject();
      o.put("topic", r.topic());
      o.set("key", decode(r.key(), inst.binary));
      o.set("value", decode(r.value(), inst.binary));
      o.put("partition", r.partition()).put("offset", r.offset());
    }
    rewind.forEach(inst.consumer::seek);
    send(ex, 200, want, out);
  }

  static JsonNode decode(byte[] b, boolean binary) throws IOException {
    if (b == null) return M.nullNode();
    if (binary) return M.getNodeFactory().textNode(Base64.getEncoder().encodeToString(b));
    return M.readTree(b);
  }

  void expireIdle() {
    long now = System.currentTimeMillis();
    instances.forEach((key, inst) -> {
      if (now - inst.lastUsed > INSTANCE_IDLE_MS) {
        synchronized (inst) {
          if (instances.remove(key, inst)) inst.consumer.close(Duration.ofSeconds(5));
        }
      }
    });
  }

  static String[] pathParts(URI uri) {
    String path = uri.getPath();
    return path.replaceAll("^/+|/+$", "").isEmpty() ? new String[0] : path.replaceAll("^/+|/+$", "").split("/+");
  }

  static Map<String, String> query(URI uri) {
    Map<String, String> q = new HashMap<>();
    if (uri.getRawQuery() == null) return q;
    for (String kv : uri.getRawQuery().split("&")) {
      int i = kv.indexOf('=');
      if (i > 0) q.put(kv.substring(0, i), kv.substring(i + 1));
    }
    return q;
  }

  static String contentType(HttpExchange ex) {
    String t = ex.getRequestHeaders().getFirst("Content-Type");
    return t == null ? "" : t.split(";")[0].trim().toLowerCase();
  }

  static JsonNode body(HttpExchange ex) throws IOException, RestError {
    byte[] b = ex.getRequestBody().readAllBytes();
    if (b.length == 0) return M.createObjectNode();
    try {
      return M.readTree(b);
    } catch (IOException e) {
      throw new RestError(400, 400, "Request body is not valid JSON: " + e.getMessage());
    }
  }

  static void send(HttpExchange ex, int status, String type, JsonNode body) throws IOException {
    if (body == null) {
      ex.sendResponseHeaders(status, -1);
      return;
    }
    byte[] b = M.writeValueAsBytes(body);
    ex.getResponseHeaders().set("Content-Type", type);
    ex.sendResponseHeaders(status, b.length);
    ex.getResponseBody().write(b);
  }
}
