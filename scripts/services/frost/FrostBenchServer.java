// HTTP front for FROST-Server's core, used by scripts/services/frost.sh.
//
// Why this file exists: the Maven Central this bench reaches has FROST-Server's core artifacts
// (FROST-Server.Core, .SQLjooq, .Plugin.CoreModel 2.0.0) but not the FROST-Server.HTTP war nor
// FROST-Server.HTTP.Common (its servlets). This class takes their place: the JDK's built-in HTTP
// server hands every request under /FROST-Server/<version>/... to FROST's own Service, so URL
// parsing, $filter/$expand, JSON (de)serialisation, validation and PostGIS persistence are all
// FROST's real code; only the thin HTTP adapter is ours.
//
// Settings come from environment variables exactly as with the war (FROST maps `a_b` to `a.b`):
// serviceRootUrl, persistence_db_url, persistence_db_username, ... Listen address: FROST_BENCH_BIND
// (default 127.0.0.1:8090).
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import de.fraunhofer.iosb.ilt.frostserver.messagebus.MessageBusFactory;
import de.fraunhofer.iosb.ilt.frostserver.path.UrlHelper;
import de.fraunhofer.iosb.ilt.frostserver.path.Version;
import de.fraunhofer.iosb.ilt.frostserver.persistence.PersistenceManagerFactory;
import de.fraunhofer.iosb.ilt.frostserver.service.Service;
import de.fraunhofer.iosb.ilt.frostserver.service.ServiceRequest;
import de.fraunhofer.iosb.ilt.frostserver.service.ServiceRequestBuilder;
import de.fraunhofer.iosb.ilt.frostserver.service.ServiceResponseDefault;
import de.fraunhofer.iosb.ilt.frostserver.settings.CoreSettings;
import de.fraunhofer.iosb.ilt.frostserver.util.HttpMethod;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

public final class FrostBenchServer {
    private static final String CONTEXT = "/FROST-Server";
    /**
     * FROST 2.0.0 initialises some shared state lazily and without synchronisation (its JsonReader's
     * ObjectMapper cache threw ConcurrentModificationException when the first POSTs arrived together:
     * "Failed to store data", 500). So the first request of each HTTP method and version runs alone;
     * once one has succeeded, requests of that kind run in parallel.
     */
    private static final ReentrantReadWriteLock WARM_UP_GATE = new ReentrantReadWriteLock();
    private static final Set<String> WARMED_UP = ConcurrentHashMap.newKeySet();

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        // Only the plugins whose jars Maven Central has; FROST's default list names more.
        props.setProperty("plugins.providedPlugins",
                "de.fraunhofer.iosb.ilt.frostserver.plugin.coremodel.PluginCoreService,"
                + "de.fraunhofer.iosb.ilt.frostserver.plugin.coremodel.PluginCoreModel,"
                + "de.fraunhofer.iosb.ilt.frostserver.formatter.PluginResultFormatDefault,"
                + "de.fraunhofer.iosb.ilt.frostserver.plugin.format.dataarray.PluginResultFormatDataArray");
        // The DataArray plugin (FROST-Server.Plugin.FormatDataArray) registers itself only when enabled:
        // it adds `POST /v1.1/CreateObservations` (bulk Observations, one row per Observation) and
        // `$resultFormat=dataArray`, and lists its conformance class in the service document.
        props.setProperty("plugins.dataArray.enable", "true");
        // FROST 2.0.0's settings migrator fails when this key is unset (the war's web.xml sets it).
        props.setProperty("persistence.persistenceManagerImplementationClass",
                "de.fraunhofer.iosb.ilt.frostserver.persistence.pgjooq.PostgresPersistenceManager");
        props.setProperty("plugins.coreModel.idType", "LONG");
        props.setProperty("mqtt.Enabled", "false");
        props.setProperty("tempPath", Files.createTempDirectory("frost").toString());
        // Environment variables (serviceRootUrl, persistence_*) are added by FROST's Settings.
        CoreSettings settings = new CoreSettings(props);
        PersistenceManagerFactory.init(settings); // creates/updates the schema (autoUpdateDatabase)
        MessageBusFactory.createMessageBus(settings);

        String bind = System.getenv().getOrDefault("FROST_BENCH_BIND", "127.0.0.1:8090");
        int colon = bind.lastIndexOf(':');
        HttpServer server = HttpServer.create(
                new InetSocketAddress(bind.substring(0, colon), Integer.parseInt(bind.substring(colon + 1))), 64);
        server.createContext(CONTEXT, exchange -> handle(settings, exchange));
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.start();
        System.err.println("FrostBenchServer listening on http://" + bind + CONTEXT);
    }

    private static void handle(CoreSettings settings, HttpExchange exchange) throws IOException {
        try {
            // Raw path so that encoded ids keep their slashes until FROST decodes them.
            String rest = exchange.getRequestURI().getRawPath().substring(CONTEXT.length());
            if (rest.isEmpty() || rest.equals("/")) {
                send(exchange, 404, "text/plain", "use " + CONTEXT + "/v1.0 or " + CONTEXT + "/v1.1");
                return;
            }
            int slash = rest.indexOf('/', 1);
            String versionPart = slash > 0 ? rest.substring(1, slash) : rest.substring(1);
            String path = slash > 0 ? URLDecoder.decode(rest.substring(slash), StandardCharsets.UTF_8) : "";
            Version version = settings.getPluginManager().getVersion(versionPart);
            if (version == null) {
                send(exchange, 404, "text/plain", "unknown version " + versionPart);
                return;
            }
            HttpMethod method = HttpMethod.fromString(exchange.getRequestMethod());
            String contentType = exchange.getRequestHeaders().getFirst("Content-Type");
            String rawQuery = exchange.getRequestURI().getRawQuery();
            String kind = method + " " + versionPart;
            Lock gate = WARMED_UP.contains(kind) ? WARM_UP_GATE.readLock() : WARM_UP_GATE.writeLock();
            gate.lock();
            try (Service service = new Service(settings)) {
                String requestType = service.getRequestType(method, version, path, contentType);
                if (requestType == null) {
                    send(exchange, 405, "text/plain", "method not allowed here");
                    return;
                }
                ServiceRequest request = new ServiceRequestBuilder(settings, version)
                        .withRequestType(requestType)
                        .withUrlPath(path)
                        .withUrlQuery(rawQuery == null ? null : URLDecoder.decode(rawQuery, StandardCharsets.UTF_8))
                        .withParameterMap(UrlHelper.splitQuery(rawQuery))
                        .withContent(exchange.getRequestBody())
                        .withContentType(contentType)
                        .build();
                ServiceResponseDefault response = new ServiceResponseDefault();
                service.execute(request, response);
                for (Map.Entry<String, String> h : response.getHeaders().entrySet()) {
                    exchange.getResponseHeaders().set(h.getKey(), h.getValue());
                }
                String body = response.getWriter().toString();
                String type = response.getContentType();
                String message = response.getMessage();
                if (body.isEmpty() && message != null && !message.isEmpty()) {
                    // FROST 2.0 already formats its error messages as JSON documents.
                    body = message.startsWith("{") ? message
                            : "{\"code\":" + response.getCode() + ",\"type\":\"error\",\"message\":"
                            + jsonString(message) + "}";
                    type = "application/json";
                }
                if (response.getCode() > 0 && response.getCode() < 500) {
                    WARMED_UP.add(kind);
                }
                send(exchange, response.getCode(), type == null ? "application/json" : type, body);
            } finally {
                gate.unlock();
            }
        } catch (Exception e) {
            e.printStackTrace();
            send(exchange, 500, "text/plain", String.valueOf(e));
        } finally {
            exchange.close();
        }
    }

    private static void send(HttpExchange exchange, int code, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > 0) {
            exchange.getResponseHeaders().set("Content-Type", type + (type.contains("charset") ? "" : "; charset=utf-8"));
        }
        exchange.sendResponseHeaders(code == 0 ? 500 : code, bytes.length == 0 ? -1 : bytes.length);
        if (bytes.length > 0) {
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    private static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c)); else b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
