// Drives the generated TypeScript client against running framevault services:
// FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET name them (host:port).
// Without both variables the test is skipped.
//
// Transport security comes from the variables the Python SDK reads:
// FRAMEVAULT_CA_FILE (trust anchors, PEM) and FRAMEVAULT_CLIENT_CERT_FILE /
// FRAMEVAULT_CLIENT_KEY_FILE (client certificate for mutual TLS) turn TLS on;
// FRAMEVAULT_TOKEN is sent as "authorization: Bearer <token>" on every call.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  type CallOptions,
  type ChannelCredentials,
  type ClientUnaryCall,
  credentials,
  Metadata as CallMetadata,
  type ServiceError,
} from "@grpc/grpc-js";

import {
  BadRequest,
  BatchReadBlobsRequest,
  BatchUpdateBlobsRequest,
  BlobServiceClient,
  CreateDatasetRequest,
  type DeepPartial,
  type Digest,
  FindMissingBlobsRequest,
  type Frame,
  FrameResult_Outcome,
  type FrameResult,
  GetVersionRequest,
  IterateFramesRequest,
  IterationOrder,
  MetadataServiceClient,
  UploadFramesRequest,
  type UploadFramesResponse,
  type UploadSummary,
  type Version,
  VersionStatus,
} from "../src/index";

const CALL_TIMEOUT_MS = 30_000;
const GRPC_OK = 0;
const GRPC_INVALID_ARGUMENT = 3;

interface FrameSpec {
  id: string;
  contextId: string;
  timestamp: number;
  confidence: number;
}

// The frames arrive out of order; the one at INVALID_INDEX carries a
// confidence outside [0, 1] and must fail alone.
const UPLOADED_FRAMES: FrameSpec[] = [
  { id: "b-0066", contextId: "drive-b", timestamp: 66, confidence: 0.9 },
  { id: "a-0100", contextId: "drive-a", timestamp: 100, confidence: 0.8 },
  { id: "b-0000", contextId: "drive-b", timestamp: 0, confidence: 0.7 },
  { id: "a-0050-bad-confidence", contextId: "drive-a", timestamp: 50, confidence: 1.5 },
  { id: "a-0000", contextId: "drive-a", timestamp: 0, confidence: 0.6 },
  { id: "b-0033", contextId: "drive-b", timestamp: 33, confidence: 0.5 },
];
const INVALID_INDEX = 3;
// Sequential order: context ascending, then timestamp ascending.
const SEQUENTIAL_ORDER = ["a-0000", "a-0100", "b-0000", "b-0033", "b-0066"];

const metadataTarget = process.env.FRAMEVAULT_METADATA_TARGET ?? "";
const blobTarget = process.env.FRAMEVAULT_BLOB_TARGET ?? "";
const skip = metadataTarget === "" || blobTarget === ""
  ? "FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET are not set"
  : false;

// TLS when a CA file or a client certificate is set (and FRAMEVAULT_PLAINTEXT does not say otherwise).
function channelCredentials(): ChannelCredentials {
  const caFile = process.env.FRAMEVAULT_CA_FILE ?? "";
  const certFile = process.env.FRAMEVAULT_CLIENT_CERT_FILE ?? "";
  const keyFile = process.env.FRAMEVAULT_CLIENT_KEY_FILE ?? "";
  const token = process.env.FRAMEVAULT_TOKEN ?? "";
  const plaintext = ["1", "true", "yes"].includes((process.env.FRAMEVAULT_PLAINTEXT ?? "").toLowerCase());
  if (plaintext || (caFile === "" && certFile === "")) {
    // grpc-js attaches call credentials to secure channels only; a token over plaintext would be dropped.
    assert.equal(token, "", "FRAMEVAULT_TOKEN is sent only over TLS: set FRAMEVAULT_CA_FILE");
    return credentials.createInsecure();
  }
  const tls = credentials.createSsl(
    caFile === "" ? null : readFileSync(caFile),
    keyFile === "" ? null : readFileSync(keyFile),
    certFile === "" ? null : readFileSync(certFile),
  );
  if (token === "") {
    return tls;
  }
  const bearer = credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new CallMetadata();
    metadata.set("authorization", `Bearer ${token}`);
    callback(null, metadata);
  });
  return credentials.combineChannelCredentials(tls, bearer);
}

function callOptions(): Partial<CallOptions> {
  return { deadline: Date.now() + CALL_TIMEOUT_MS };
}

type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: CallMetadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Response) => void,
) => ClientUnaryCall;

function unary<Request, Response>(method: UnaryMethod<Request, Response>, request: Request): Promise<Response> {
  return new Promise((resolve, reject) => {
    method(request, new CallMetadata(), callOptions(), (error, response) => (error ? reject(error) : resolve(response)));
  });
}

test("generated TypeScript client end to end", { skip, timeout: 300_000 }, async () => {
  const blobs = new BlobServiceClient(blobTarget, channelCredentials());
  const metadata = new MetadataServiceClient(metadataTarget, channelCredentials());
  try {
    const run = randomBytes(6).toString("hex");
    const digest = await roundTripBlob(blobs, Buffer.from(`framevault TypeScript client end-to-end blob ${run}`));
    const sourceUri = `blob:sha256/${digest.hash}/${digest.sizeBytes}`;
    const draft = await createDatasetDraft(metadata, `ts-e2e-${run}`);
    await uploadFrames(metadata, draft.id, sourceUri);
    await iterateInSequentialOrder(metadata, draft.id);
  } finally {
    blobs.close();
    metadata.close();
  }
});

// Stores content by its digest and reads it back by digest.
async function roundTripBlob(blobs: BlobServiceClient, content: Buffer): Promise<Digest> {
  const digest: Digest = { hash: createHash("sha256").update(content).digest("hex"), sizeBytes: content.length };

  const updated = await unary(blobs.batchUpdateBlobs.bind(blobs),
    BatchUpdateBlobsRequest.fromPartial({ requests: [{ digest, data: content }] }));
  assert.equal(updated.responses.length, 1);
  assert.equal(updated.responses[0].status?.code ?? GRPC_OK, GRPC_OK, JSON.stringify(updated.responses[0].status));

  const missing = await unary(blobs.findMissingBlobs.bind(blobs), FindMissingBlobsRequest.fromPartial({ digests: [digest] }));
  assert.deepEqual(missing.missingDigests, []);

  const read = await unary(blobs.batchReadBlobs.bind(blobs), BatchReadBlobsRequest.fromPartial({ digests: [digest] }));
  assert.equal(read.responses.length, 1);
  const [blob] = read.responses;
  assert.equal(blob.status?.code ?? GRPC_OK, GRPC_OK, JSON.stringify(blob.status));
  assert.deepEqual(blob.digest, digest);
  assert.ok(content.equals(blob.data), "BatchReadBlobs returned other bytes than were stored");
  return digest;
}

// Creates a dataset and returns its draft `Current`.
async function createDatasetDraft(metadata: MetadataServiceClient, name: string): Promise<Version> {
  const dataset = await unary(metadata.createDataset.bind(metadata), CreateDatasetRequest.fromPartial({
    dataset: { name, description: "created by the TypeScript client end-to-end test" },
    failIfExists: true,
  }));
  assert.ok(dataset.id !== "", "CreateDataset returned no id");
  assert.equal(dataset.name, name);
  const draft = await unary(metadata.getVersion.bind(metadata), GetVersionRequest.fromPartial({
    version: { dataset: { id: dataset.id }, name: "Current" },
  }));
  assert.equal(draft.status, VersionStatus.VERSION_STATUS_DRAFT);
  assert.equal(draft.datasetId, dataset.id);
  return draft;
}

function frameOf(spec: FrameSpec, sourceUri: string): DeepPartial<Frame> {
  return {
    id: spec.id,
    contextId: spec.contextId,
    timestamp: spec.timestamp,
    sources: [{ id: "default", uri: sourceUri, contentType: "text/plain", width: 640, height: 480 }],
    rois: [
      { labels: ["car"], confidence: spec.confidence, box: { x: 10, y: 20, w: 30, h: 40 } },
      { labels: ["daytime"] },
    ],
    meta: { fields: { client: { stringValue: "typescript" } } },
  };
}

// Streams the frames, keeping no more unanswered frames in flight than the
// server's window, and checks every per-frame result.
async function uploadFrames(metadata: MetadataServiceClient, draftId: string, sourceUri: string): Promise<void> {
  const call = metadata.uploadFrames(callOptions());
  const responses: AsyncIterator<UploadFramesResponse> = call[Symbol.asyncIterator]();
  const receive = async (): Promise<UploadFramesResponse | undefined> => {
    const next = await responses.next();
    return next.done ? undefined : next.value;
  };

  call.write(UploadFramesRequest.fromPartial({ options: { version: { id: draftId } } }));
  const first = await receive();
  const window = first?.started?.maxUnacknowledgedFrames ?? 0;
  assert.ok(window > 0, `first UploadFrames message ${JSON.stringify(first)} should be 'started' with a window`);

  const results: FrameResult[] = [];
  let sent = 0;
  while (sent < UPLOADED_FRAMES.length) {
    const room = Math.min(window - (sent - results.length), UPLOADED_FRAMES.length - sent);
    if (room === 0) {
      const batch = (await receive())?.results;
      assert.ok(batch, "UploadFrames sent something other than results before the client half-closed");
      results.push(...batch.results);
      continue;
    }
    const items = UPLOADED_FRAMES.slice(sent, sent + room).map((spec, offset) => ({
      clientKey: `key-${sent + offset}`,
      frame: frameOf(spec, sourceUri),
    }));
    call.write(UploadFramesRequest.fromPartial({ items }));
    sent += room;
  }
  call.end();

  let summary: UploadSummary | undefined;
  for (let response = await receive(); response !== undefined; response = await receive()) {
    if (response.results) {
      results.push(...response.results.results);
    } else if (response.summary) {
      summary = response.summary;
    } else {
      assert.fail(`unexpected UploadFrames message ${JSON.stringify(response)}`);
    }
  }

  assert.equal(results.length, UPLOADED_FRAMES.length);
  results.forEach((result, index) => {
    const spec = UPLOADED_FRAMES[index];
    assert.equal(result.index, index);
    assert.equal(result.clientKey, `key-${index}`);
    assert.equal(result.frameId, spec.id);
    if (index === INVALID_INDEX) {
      checkRejectedConfidence(result);
    } else {
      assert.equal(result.outcome, FrameResult_Outcome.OUTCOME_CREATED, `frame ${spec.id}: ${JSON.stringify(result.error)}`);
      assert.equal(result.error, undefined);
    }
  });
  assert.ok(summary, "no UploadSummary after half-close");
  assert.deepEqual(
    { created: summary.created, updated: summary.updated, failed: summary.failed, failedFrameIds: summary.failedFrameIds },
    { created: 5, updated: 0, failed: 1, failedFrameIds: [UPLOADED_FRAMES[INVALID_INDEX].id] },
  );
}

function checkRejectedConfidence(result: FrameResult): void {
  assert.equal(result.outcome, FrameResult_Outcome.OUTCOME_FAILED);
  assert.equal(result.error?.code, GRPC_INVALID_ARGUMENT);
  const fields = (result.error?.details ?? [])
    .filter((detail) => detail.typeUrl.endsWith("/google.rpc.BadRequest"))
    .flatMap((detail) => BadRequest.decode(detail.value).fieldViolations.map((violation) => violation.field));
  assert.ok(fields.includes(`frames[${INVALID_INDEX}].rois[0].confidence`), `BadRequest fields ${JSON.stringify(fields)}`);
}

// Reads the draft as a view, two frames per message.
async function iterateInSequentialOrder(metadata: MetadataServiceClient, draftId: string): Promise<void> {
  const stream = metadata.iterateFrames(IterateFramesRequest.fromPartial({
    view: { selections: [{ version: { id: draftId } }], order: IterationOrder.ITERATION_ORDER_SEQUENTIAL },
    framesPerMessage: 2,
  }), callOptions());
  const frames: Frame[] = [];
  for await (const response of stream) {
    assert.notEqual(response.cursor, "", "IterateFrames message without a cursor");
    frames.push(...response.frames);
  }
  frames.forEach((frame, index) => {
    const previous = frames[index - 1];
    if (previous) {
      const inOrder = previous.contextId < frame.contextId
        || (previous.contextId === frame.contextId && previous.timestamp <= frame.timestamp);
      assert.ok(inOrder, `frame ${frame.id} comes after ${previous.id}: not sequential order`);
    }
  });
  assert.deepEqual(frames.map((frame) => frame.id), SEQUENTIAL_ORDER);
}
