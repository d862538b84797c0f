package dev.framevault.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import dev.framevault.v1.BatchReadBlobsRequest;
import dev.framevault.v1.BatchReadBlobsResponse;
import dev.framevault.v1.BatchUpdateBlobsRequest;
import dev.framevault.v1.BatchUpdateBlobsResponse;
import dev.framevault.v1.BlobServiceGrpc;
import dev.framevault.v1.Box2D;
import dev.framevault.v1.CreateDatasetRequest;
import dev.framevault.v1.Dataset;
import dev.framevault.v1.DatasetRef;
import dev.framevault.v1.Digest;
import dev.framevault.v1.FindMissingBlobsRequest;
import dev.framevault.v1.Frame;
import dev.framevault.v1.FrameResult;
import dev.framevault.v1.GetVersionRequest;
import dev.framevault.v1.IterateFramesRequest;
import dev.framevault.v1.IterateFramesResponse;
import dev.framevault.v1.IterationOrder;
import dev.framevault.v1.Metadata;
import dev.framevault.v1.MetadataServiceGrpc;
import dev.framevault.v1.MetadataValue;
import dev.framevault.v1.Roi;
import dev.framevault.v1.Source;
import dev.framevault.v1.UploadFramesRequest;
import dev.framevault.v1.UploadFramesResponse;
import dev.framevault.v1.UploadItem;
import dev.framevault.v1.UploadOptions;
import dev.framevault.v1.UploadSummary;
import dev.framevault.v1.Version;
import dev.framevault.v1.VersionRef;
import dev.framevault.v1.VersionStatus;
import dev.framevault.v1.View;
import dev.framevault.v1.ViewSelection;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Drives the generated Java client against running framevault services:
 * FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET name them (host:port).
 * Without both variables the test is skipped.
 *
 * <p>Transport security comes from the variables the Python SDK reads: FRAMEVAULT_CA_FILE (trust
 * anchors, PEM) and FRAMEVAULT_CLIENT_CERT_FILE / FRAMEVAULT_CLIENT_KEY_FILE (client certificate for
 * mutual TLS) turn TLS on; FRAMEVAULT_TOKEN is sent as "authorization: Bearer &lt;token&gt;" on every call.
 */
class EndToEndTest {
  private static final long CALL_TIMEOUT_SECONDS = 30;

  private record FrameSpec(String id, String contextId, long timestamp, float confidence) {}

  /** Sent out of order; the frame at INVALID_INDEX has a confidence outside [0, 1] and must fail alone. */
  private static final List<FrameSpec> UPLOADED_FRAMES = List.of(
      new FrameSpec("b-0066", "drive-b", 66, 0.9f),
      new FrameSpec("a-0100", "drive-a", 100, 0.8f),
      new FrameSpec("b-0000", "drive-b", 0, 0.7f),
      new FrameSpec("a-0050-bad-confidence", "drive-a", 50, 1.5f),
      new FrameSpec("a-0000", "drive-a", 0, 0.6f),
      new FrameSpec("b-0033", "drive-b", 33, 0.5f));
  private static final int INVALID_INDEX = 3;
  /** Sequential order: context ascending, then timestamp ascending. */
  private static final List<String> SEQUENTIAL_ORDER =
      List.of("a-0000", "a-0100", "b-0000", "b-0033", "b-0066");

  private final List<ManagedChannel> channels = new ArrayList<>();

  @AfterEach
  void closeChannels() throws InterruptedException {
    for (ManagedChannel channel : channels) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void generatedClientEndToEnd() throws Exception {
    String metadataTarget = System.getenv().getOrDefault("FRAMEVAULT_METADATA_TARGET", "");
    String blobTarget = System.getenv().getOrDefault("FRAMEVAULT_BLOB_TARGET", "");
    assumeTrue(!metadataTarget.isEmpty() && !blobTarget.isEmpty(),
        "FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET are not set");
    ManagedChannel blobChannel = open(blobTarget);
    ManagedChannel metadataChannel = open(metadataTarget);
    String run = randomSuffix();

    byte[] content = ("framevault Java client end-to-end blob " + run).getBytes(StandardCharsets.UTF_8);
    Digest digest = roundTripBlob(blobChannel, content);
    String sourceUri = "blob:sha256/" + digest.getHash() + "/" + digest.getSizeBytes();

    Version draft = createDatasetDraft(metadataChannel, "java-e2e-" + run);
    VersionRef draftRef = VersionRef.newBuilder().setId(draft.getId()).build();

    uploadFrames(metadataChannel, draftRef, sourceUri);
    iterateInSequentialOrder(metadataChannel, draftRef);
  }

  private ManagedChannel open(String target) throws IOException {
    ManagedChannel channel = Grpc.newChannelBuilder(target, channelCredentials()).build();
    channels.add(channel);
    return channel;
  }

  /** TLS when a CA file or a client certificate is set (and FRAMEVAULT_PLAINTEXT does not say otherwise). */
  private static ChannelCredentials channelCredentials() throws IOException {
    Map<String, String> env = System.getenv();
    String caFile = env.getOrDefault("FRAMEVAULT_CA_FILE", "");
    String certFile = env.getOrDefault("FRAMEVAULT_CLIENT_CERT_FILE", "");
    String keyFile = env.getOrDefault("FRAMEVAULT_CLIENT_KEY_FILE", "");
    String token = env.getOrDefault("FRAMEVAULT_TOKEN", "");
    String plaintext = env.getOrDefault("FRAMEVAULT_PLAINTEXT", "").toLowerCase(Locale.ROOT);
    if (List.of("1", "true", "yes").contains(plaintext) || (caFile.isEmpty() && certFile.isEmpty())) {
      // gRPC Java attaches call credentials to secure channels only; a token over plaintext would fail.
      assertTrue(token.isEmpty(), "FRAMEVAULT_TOKEN is sent only over TLS: set FRAMEVAULT_CA_FILE");
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
    if (!caFile.isEmpty()) {
      tls.trustManager(new File(caFile));
    }
    if (!certFile.isEmpty()) {
      tls.keyManager(new File(certFile), new File(keyFile));
    }
    ChannelCredentials transport = tls.build();
    return token.isEmpty() ? transport : CompositeChannelCredentials.create(transport, new BearerToken(token));
  }

  /** Sends "authorization: Bearer &lt;token&gt;" with every call. */
  private static final class BearerToken extends CallCredentials {
    private static final io.grpc.Metadata.Key<String> AUTHORIZATION =
        io.grpc.Metadata.Key.of("authorization", io.grpc.Metadata.ASCII_STRING_MARSHALLER);
    private final String token;

    BearerToken(String token) {
      this.token = token;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
      try {
        io.grpc.Metadata headers = new io.grpc.Metadata();
        headers.put(AUTHORIZATION, "Bearer " + token);
        applier.apply(headers);
      } catch (RuntimeException e) {
        applier.fail(Status.UNAUTHENTICATED.withCause(e));
      }
    }
  }

  private static String randomSuffix() {
    byte[] bytes = new byte[6];
    new SecureRandom().nextBytes(bytes);
    return HexFormat.of().formatHex(bytes);
  }

  private static BlobServiceGrpc.BlobServiceBlockingStub blobs(ManagedChannel channel) {
    return BlobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
  }

  private static MetadataServiceGrpc.MetadataServiceBlockingStub metadata(ManagedChannel channel) {
    return MetadataServiceGrpc.newBlockingStub(channel).withDeadlineAfter(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
  }

  /** Stores content by its digest and reads it back by digest. */
  private static Digest roundTripBlob(ManagedChannel channel, byte[] content) throws NoSuchAlgorithmException {
    byte[] sha256 = MessageDigest.getInstance("SHA-256").digest(content);
    Digest digest = Digest.newBuilder()
        .setHash(HexFormat.of().formatHex(sha256))
        .setSizeBytes(content.length)
        .build();

    BatchUpdateBlobsResponse updated = blobs(channel).batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .addRequests(BatchUpdateBlobsRequest.Request.newBuilder()
            .setDigest(digest)
            .setData(ByteString.copyFrom(content)))
        .build());
    assertEquals(1, updated.getResponsesCount());
    assertEquals(Code.OK_VALUE, updated.getResponses(0).getStatus().getCode(),
        () -> updated.getResponses(0).getStatus().toString());

    assertEquals(List.of(), blobs(channel)
        .findMissingBlobs(FindMissingBlobsRequest.newBuilder().addDigests(digest).build())
        .getMissingDigestsList());

    BatchReadBlobsResponse read = blobs(channel)
        .batchReadBlobs(BatchReadBlobsRequest.newBuilder().addDigests(digest).build());
    assertEquals(1, read.getResponsesCount());
    BatchReadBlobsResponse.Response blob = read.getResponses(0);
    assertEquals(Code.OK_VALUE, blob.getStatus().getCode(), () -> blob.getStatus().toString());
    assertEquals(digest, blob.getDigest());
    assertArrayEquals(content, blob.getData().toByteArray());
    return digest;
  }

  /** Creates a dataset and returns its draft {@code Current}. */
  private static Version createDatasetDraft(ManagedChannel channel, String name) {
    Dataset dataset = metadata(channel).createDataset(CreateDatasetRequest.newBuilder()
        .setDataset(Dataset.newBuilder()
            .setName(name)
            .setDescription("created by the Java client end-to-end test"))
        .setFailIfExists(true)
        .build());
    assertFalse(dataset.getId().isEmpty(), "CreateDataset returned no id");
    assertEquals(name, dataset.getName());
    Version draft = metadata(channel).getVersion(GetVersionRequest.newBuilder()
        .setVersion(VersionRef.newBuilder()
            .setDataset(DatasetRef.newBuilder().setId(dataset.getId()))
            .setName("Current"))
        .build());
    assertEquals(VersionStatus.VERSION_STATUS_DRAFT, draft.getStatus());
    assertEquals(dataset.getId(), draft.getDatasetId());
    return draft;
  }

  private static Frame frameOf(FrameSpec spec, String sourceUri) {
    return Frame.newBuilder()
        .setId(spec.id())
        .setContextId(spec.contextId())
        .setTimestamp(spec.timestamp())
        .addSources(Source.newBuilder()
            .setId("default")
            .setUri(sourceUri)
            .setContentType("text/plain")
            .setWidth(640)
            .setHeight(480))
        .addRois(Roi.newBuilder()
            .addLabels("car")
            .setConfidence(spec.confidence())
            .setBox(Box2D.newBuilder().setX(10).setY(20).setW(30).setH(40)))
        .addRois(Roi.newBuilder().addLabels("daytime"))
        .setMeta(Metadata.newBuilder()
            .putFields("client", MetadataValue.newBuilder().setStringValue("java").build()))
        .build();
  }

  /** One thing the response stream delivered: a message, its end, or its failure. */
  private record StreamEvent(UploadFramesResponse response, Throwable error, boolean completed) {}

  /**
   * Streams the frames, keeping no more unanswered frames in flight than the
   * server's window, and checks every per-frame result.
   */
  private static void uploadFrames(ManagedChannel channel, VersionRef draft, String sourceUri) throws Exception {
    BlockingQueue<StreamEvent> events = new LinkedBlockingQueue<>();
    StreamObserver<UploadFramesRequest> requests = MetadataServiceGrpc.newStub(channel)
        .withDeadlineAfter(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS)
        .uploadFrames(new StreamObserver<>() {
          @Override
          public void onNext(UploadFramesResponse response) {
            events.add(new StreamEvent(response, null, false));
          }

          @Override
          public void onError(Throwable error) {
            events.add(new StreamEvent(null, error, false));
          }

          @Override
          public void onCompleted() {
            events.add(new StreamEvent(null, null, true));
          }
        });

    requests.onNext(UploadFramesRequest.newBuilder()
        .setOptions(UploadOptions.newBuilder().setVersion(draft))
        .build());
    UploadFramesResponse first = nextResponse(events);
    assertNotNull(first, "UploadFrames ended before it started");
    int window = first.getStarted().getMaxUnacknowledgedFrames();
    assertTrue(first.hasStarted() && window > 0,
        () -> "first UploadFrames message should be `started` with a window: " + first);

    List<FrameResult> results = new ArrayList<>();
    int sent = 0;
    while (sent < UPLOADED_FRAMES.size()) {
      int room = Math.min(window - (sent - results.size()), UPLOADED_FRAMES.size() - sent);
      if (room == 0) {
        UploadFramesResponse response = nextResponse(events);
        assertTrue(response != null && response.hasResults(),
            () -> "UploadFrames sent something other than results before the half-close");
        results.addAll(response.getResults().getResultsList());
        continue;
      }
      UploadFramesRequest.Builder request = UploadFramesRequest.newBuilder();
      for (int index = sent; index < sent + room; index++) {
        request.addItems(UploadItem.newBuilder()
            .setClientKey("key-" + index)
            .setFrame(frameOf(UPLOADED_FRAMES.get(index), sourceUri)));
      }
      requests.onNext(request.build());
      sent += room;
    }
    requests.onCompleted();

    UploadSummary summary = null;
    for (UploadFramesResponse response = nextResponse(events); response != null; response = nextResponse(events)) {
      switch (response.getMessageCase()) {
        case RESULTS -> results.addAll(response.getResults().getResultsList());
        case SUMMARY -> summary = response.getSummary();
        default -> fail("unexpected UploadFrames message " + response);
      }
    }

    assertEquals(UPLOADED_FRAMES.size(), results.size());
    for (int index = 0; index < results.size(); index++) {
      FrameResult result = results.get(index);
      FrameSpec spec = UPLOADED_FRAMES.get(index);
      assertEquals(index, result.getIndex());
      assertEquals("key-" + index, result.getClientKey());
      assertEquals(spec.id(), result.getFrameId());
      if (index == INVALID_INDEX) {
        checkRejectedConfidence(result);
      } else {
        assertEquals(FrameResult.Outcome.OUTCOME_CREATED, result.getOutcome(), result::toString);
        assertFalse(result.hasError());
      }
    }
    assertNotNull(summary, "no UploadSummary after half-close");
    assertEquals(5, summary.getCreated());
    assertEquals(0, summary.getUpdated());
    assertEquals(1, summary.getFailed());
    assertEquals(List.of(UPLOADED_FRAMES.get(INVALID_INDEX).id()), summary.getFailedFrameIdsList());
  }

  /** The next response, or null once the stream has completed; a stream failure fails the test. */
  private static UploadFramesResponse nextResponse(BlockingQueue<StreamEvent> events) throws InterruptedException {
    StreamEvent event = events.poll(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    assertNotNull(event, "UploadFrames sent nothing in time");
    if (event.error() != null) {
      throw new AssertionError("UploadFrames failed", event.error());
    }
    return event.completed() ? null : event.response();
  }

  private static void checkRejectedConfidence(FrameResult result) throws InvalidProtocolBufferException {
    assertEquals(FrameResult.Outcome.OUTCOME_FAILED, result.getOutcome(), result::toString);
    assertEquals(Code.INVALID_ARGUMENT_VALUE, result.getError().getCode(), result::toString);
    List<String> fields = new ArrayList<>();
    for (Any detail : result.getError().getDetailsList()) {
      if (detail.is(BadRequest.class)) {
        for (BadRequest.FieldViolation violation : detail.unpack(BadRequest.class).getFieldViolationsList()) {
          fields.add(violation.getField());
        }
      }
    }
    String wanted = "frames[" + INVALID_INDEX + "].rois[0].confidence";
    assertTrue(fields.contains(wanted), () -> "BadRequest fields " + fields + ", want " + wanted);
  }

  /** Reads the draft as a view, two frames per message. */
  private static void iterateInSequentialOrder(ManagedChannel channel, VersionRef draft) {
    Iterator<IterateFramesResponse> responses = metadata(channel).iterateFrames(IterateFramesRequest.newBuilder()
        .setView(View.newBuilder()
            .addSelections(ViewSelection.newBuilder().setVersion(draft))
            .setOrder(IterationOrder.ITERATION_ORDER_SEQUENTIAL))
        .setFramesPerMessage(2)
        .build());
    List<Frame> frames = new ArrayList<>();
    while (responses.hasNext()) {
      IterateFramesResponse response = responses.next();
      assertFalse(response.getCursor().isEmpty(), "IterateFrames message without a cursor");
      frames.addAll(response.getFramesList());
    }
    for (int index = 1; index < frames.size(); index++) {
      Frame previous = frames.get(index - 1);
      Frame frame = frames.get(index);
      int byContext = previous.getContextId().compareTo(frame.getContextId());
      assertTrue(byContext < 0 || (byContext == 0 && previous.getTimestamp() <= frame.getTimestamp()),
          () -> "frame " + frame.getId() + " comes after " + previous.getId() + ": not sequential order");
    }
    assertEquals(SEQUENTIAL_ORDER, frames.stream().map(Frame::getId).toList());
  }
}
