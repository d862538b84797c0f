// Package e2e drives the generated Go client against running framevault
// services: FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET name them
// (host:port). Without both variables the test is skipped.
//
// Transport security comes from the variables the Python SDK reads:
// FRAMEVAULT_CA_FILE (trust anchors, PEM) and FRAMEVAULT_CLIENT_CERT_FILE /
// FRAMEVAULT_CLIENT_KEY_FILE (client certificate for mutual TLS) turn TLS on;
// FRAMEVAULT_TOKEN is sent as "authorization: Bearer <token>" on every call.
package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	fv "github.com/framevault/framevault/clients/go/gen/framevault/v1"
)

const callTimeout = 30 * time.Second

// frameSpec is one frame of the upload, in the order it is sent.
type frameSpec struct {
	id         string
	contextID  string
	timestamp  int64
	confidence float32
}

// The frames arrive out of order; the one at invalidIndex carries a
// confidence outside [0, 1] and must fail alone.
var uploadedFrames = []frameSpec{
	{"b-0066", "drive-b", 66, 0.9},
	{"a-0100", "drive-a", 100, 0.8},
	{"b-0000", "drive-b", 0, 0.7},
	{"a-0050-bad-confidence", "drive-a", 50, 1.5},
	{"a-0000", "drive-a", 0, 0.6},
	{"b-0033", "drive-b", 33, 0.5},
}

const invalidIndex = 3

// Sequential order: context ascending, then timestamp ascending.
var sequentialOrder = []string{"a-0000", "a-0100", "b-0000", "b-0033", "b-0066"}

func TestEndToEnd(t *testing.T) {
	metadataTarget := os.Getenv("FRAMEVAULT_METADATA_TARGET")
	blobTarget := os.Getenv("FRAMEVAULT_BLOB_TARGET")
	if metadataTarget == "" || blobTarget == "" {
		t.Skip("FRAMEVAULT_METADATA_TARGET and FRAMEVAULT_BLOB_TARGET are not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	blobs := fv.NewBlobServiceClient(dial(t, blobTarget))
	metadata := fv.NewMetadataServiceClient(dial(t, metadataTarget))
	run := randomSuffix(t)

	content := []byte("framevault Go client end-to-end blob " + run)
	digest := roundTripBlob(ctx, t, blobs, content)
	sourceURI := fmt.Sprintf("blob:sha256/%s/%d", digest.Hash, digest.SizeBytes)

	draft := createDatasetDraft(ctx, t, metadata, "go-e2e-"+run)
	draftRef := &fv.VersionRef{Ref: &fv.VersionRef_Id{Id: draft.Id}}

	uploadFrames(ctx, t, metadata, draftRef, sourceURI)
	iterateInSequentialOrder(ctx, t, metadata, draftRef)
	countWithReferenceQuery(ctx, t, metadata, draftRef)
}

func dial(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	transport, secure := transportCredentials(t)
	options := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if token := os.Getenv("FRAMEVAULT_TOKEN"); token != "" {
		options = append(options, grpc.WithPerRPCCredentials(bearerToken{token: token, secure: secure}))
	}
	conn, err := grpc.NewClient(target, options...)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// transportCredentials is TLS when a CA file or a client certificate is set
// (and FRAMEVAULT_PLAINTEXT does not say otherwise), plaintext else.
func transportCredentials(t *testing.T) (credentials.TransportCredentials, bool) {
	t.Helper()
	caFile := os.Getenv("FRAMEVAULT_CA_FILE")
	certFile := os.Getenv("FRAMEVAULT_CLIENT_CERT_FILE")
	keyFile := os.Getenv("FRAMEVAULT_CLIENT_KEY_FILE")
	plaintext := strings.ToLower(os.Getenv("FRAMEVAULT_PLAINTEXT"))
	if plaintext == "1" || plaintext == "true" || plaintext == "yes" || (caFile == "" && certFile == "") {
		return insecure.NewCredentials(), false
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatalf("FRAMEVAULT_CA_FILE: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("FRAMEVAULT_CA_FILE %s holds no PEM certificate", caFile)
		}
		config.RootCAs = pool
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("FRAMEVAULT_CLIENT_CERT_FILE / FRAMEVAULT_CLIENT_KEY_FILE: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), true
}

// bearerToken sends "authorization: Bearer <token>" with every call; over
// plaintext only when the transport is plaintext on purpose.
type bearerToken struct {
	token  string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.secure }

func randomSuffix(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 6)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// roundTripBlob stores content by its digest and reads it back by digest.
func roundTripBlob(ctx context.Context, t *testing.T, blobs fv.BlobServiceClient, content []byte) *fv.Digest {
	t.Helper()
	sum := sha256.Sum256(content)
	digest := &fv.Digest{Hash: hex.EncodeToString(sum[:]), SizeBytes: int64(len(content))}

	callCtx, cancel := withDeadline(ctx)
	defer cancel()
	updated, err := blobs.BatchUpdateBlobs(callCtx, &fv.BatchUpdateBlobsRequest{
		Requests: []*fv.BatchUpdateBlobsRequest_Request{{Digest: digest, Data: content}},
	})
	if err != nil {
		t.Fatalf("BatchUpdateBlobs: %v", err)
	}
	if len(updated.Responses) != 1 || updated.Responses[0].GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("BatchUpdateBlobs responses = %v, want one OK", updated.Responses)
	}

	missing, err := blobs.FindMissingBlobs(callCtx, &fv.FindMissingBlobsRequest{Digests: []*fv.Digest{digest}})
	if err != nil {
		t.Fatalf("FindMissingBlobs: %v", err)
	}
	if len(missing.MissingDigests) != 0 {
		t.Fatalf("FindMissingBlobs after upload = %v, want none", missing.MissingDigests)
	}

	read, err := blobs.BatchReadBlobs(callCtx, &fv.BatchReadBlobsRequest{Digests: []*fv.Digest{digest}})
	if err != nil {
		t.Fatalf("BatchReadBlobs: %v", err)
	}
	if len(read.Responses) != 1 {
		t.Fatalf("BatchReadBlobs returned %d responses, want 1", len(read.Responses))
	}
	got := read.Responses[0]
	if got.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("BatchReadBlobs status = %v, want OK", got.GetStatus())
	}
	if !proto.Equal(got.Digest, digest) || string(got.Data) != string(content) {
		t.Fatalf("BatchReadBlobs returned %v / %q, want %v / %q", got.Digest, got.Data, digest, content)
	}
	return digest
}

// createDatasetDraft creates a dataset and returns its draft `Current`.
func createDatasetDraft(ctx context.Context, t *testing.T, metadata fv.MetadataServiceClient, name string) *fv.Version {
	t.Helper()
	callCtx, cancel := withDeadline(ctx)
	defer cancel()
	dataset, err := metadata.CreateDataset(callCtx, &fv.CreateDatasetRequest{
		Dataset:      &fv.Dataset{Name: name, Description: "created by the Go client end-to-end test"},
		FailIfExists: true,
	})
	if err != nil {
		t.Fatalf("CreateDataset: %v", err)
	}
	if dataset.Id == "" || dataset.Name != name {
		t.Fatalf("CreateDataset returned %v, want an id and name %q", dataset, name)
	}
	draft, err := metadata.GetVersion(callCtx, &fv.GetVersionRequest{Version: &fv.VersionRef{
		Dataset: &fv.DatasetRef{Ref: &fv.DatasetRef_Id{Id: dataset.Id}},
		Ref:     &fv.VersionRef_Name{Name: "Current"},
	}})
	if err != nil {
		t.Fatalf("GetVersion(Current): %v", err)
	}
	if draft.Status != fv.VersionStatus_VERSION_STATUS_DRAFT || draft.DatasetId != dataset.Id {
		t.Fatalf("Current = %v, want a draft of dataset %s", draft, dataset.Id)
	}
	return draft
}

func frameOf(spec frameSpec, sourceURI string) *fv.Frame {
	confidence := spec.confidence
	return &fv.Frame{
		Id:        spec.id,
		ContextId: spec.contextID,
		Timestamp: spec.timestamp,
		Sources: []*fv.Source{{
			Id: "default", Uri: sourceURI, ContentType: "text/plain", Width: 640, Height: 480,
		}},
		Rois: []*fv.Roi{
			{
				Labels:     []string{"car"},
				Confidence: &confidence,
				Geometry:   &fv.Roi_Box{Box: &fv.Box2D{X: 10, Y: 20, W: 30, H: 40}},
			},
			{Labels: []string{"daytime"}},
		},
		Meta: &fv.Metadata{Fields: map[string]*fv.MetadataValue{
			"client": {Kind: &fv.MetadataValue_StringValue{StringValue: "go"}},
		}},
	}
}

// uploadFrames streams the frames, keeping no more unanswered frames in
// flight than the server's window, and checks every per-frame result.
func uploadFrames(ctx context.Context, t *testing.T, metadata fv.MetadataServiceClient, draft *fv.VersionRef, sourceURI string) {
	t.Helper()
	callCtx, cancel := withDeadline(ctx)
	defer cancel()
	stream, err := metadata.UploadFrames(callCtx)
	if err != nil {
		t.Fatalf("UploadFrames: %v", err)
	}
	if err := stream.Send(&fv.UploadFramesRequest{Options: &fv.UploadOptions{Version: draft}}); err != nil {
		t.Fatalf("send options: %v", err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("UploadFrames start: %v", err)
	}
	window := int(first.GetStarted().GetMaxUnacknowledgedFrames())
	if first.GetStarted() == nil || window <= 0 {
		t.Fatalf("first UploadFrames message = %v, want `started` with a positive window", first)
	}

	var results []*fv.FrameResult
	receive := func() *fv.UploadFramesResponse {
		response, err := stream.Recv()
		if err != nil {
			t.Fatalf("UploadFrames receive: %v", err)
		}
		return response
	}
	sent := 0
	for sent < len(uploadedFrames) {
		room := min(window-(sent-len(results)), len(uploadedFrames)-sent)
		if room == 0 {
			batch := receive().GetResults()
			if batch == nil {
				t.Fatal("UploadFrames sent something other than results before the client half-closed")
			}
			results = append(results, batch.Results...)
			continue
		}
		request := &fv.UploadFramesRequest{}
		for i := sent; i < sent+room; i++ {
			request.Items = append(request.Items, &fv.UploadItem{
				ClientKey: fmt.Sprintf("key-%d", i),
				Frame:     frameOf(uploadedFrames[i], sourceURI),
			})
		}
		if err := stream.Send(request); err != nil {
			t.Fatalf("send frames: %v", err)
		}
		sent += room
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("half-close: %v", err)
	}

	var summary *fv.UploadSummary
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("UploadFrames receive: %v", err)
		}
		switch message := response.Message.(type) {
		case *fv.UploadFramesResponse_Results:
			results = append(results, message.Results.Results...)
		case *fv.UploadFramesResponse_Summary:
			summary = message.Summary
		default:
			t.Fatalf("unexpected UploadFrames message %v", response)
		}
	}

	if len(results) != len(uploadedFrames) {
		t.Fatalf("got %d frame results, want %d", len(results), len(uploadedFrames))
	}
	for i, result := range results {
		spec := uploadedFrames[i]
		if result.Index != int64(i) || result.ClientKey != fmt.Sprintf("key-%d", i) || result.FrameId != spec.id {
			t.Errorf("result %d = index %d, key %q, id %q; want arrival order", i, result.Index, result.ClientKey, result.FrameId)
		}
		if i == invalidIndex {
			checkRejectedConfidence(t, result)
			continue
		}
		if result.Outcome != fv.FrameResult_OUTCOME_CREATED || result.Error != nil {
			t.Errorf("frame %s: outcome %v, error %v; want CREATED", spec.id, result.Outcome, result.Error)
		}
	}
	if summary == nil {
		t.Fatal("no UploadSummary after half-close")
	}
	wantFailed := []string{uploadedFrames[invalidIndex].id}
	if summary.Created != 5 || summary.Updated != 0 || summary.Failed != 1 || !slices.Equal(summary.FailedFrameIds, wantFailed) {
		t.Errorf("summary = %v, want created 5, updated 0, failed 1 %v", summary, wantFailed)
	}
}

func checkRejectedConfidence(t *testing.T, result *fv.FrameResult) {
	t.Helper()
	if result.Outcome != fv.FrameResult_OUTCOME_FAILED || result.GetError().GetCode() != int32(codes.InvalidArgument) {
		t.Errorf("invalid frame: outcome %v, error %v; want FAILED with INVALID_ARGUMENT", result.Outcome, result.Error)
		return
	}
	wantField := fmt.Sprintf("frames[%d].rois[0].confidence", invalidIndex)
	var fields []string
	for _, detail := range result.Error.Details {
		badRequest := &errdetails.BadRequest{}
		if detail.MessageIs(badRequest) {
			if err := detail.UnmarshalTo(badRequest); err != nil {
				t.Fatalf("decode BadRequest: %v", err)
			}
			for _, violation := range badRequest.FieldViolations {
				fields = append(fields, violation.Field)
			}
		}
	}
	if !slices.Contains(fields, wantField) {
		t.Errorf("BadRequest fields %v, want %s", fields, wantField)
	}
}

// iterateInSequentialOrder reads the draft as a view, two frames per message.
func iterateInSequentialOrder(ctx context.Context, t *testing.T, metadata fv.MetadataServiceClient, draft *fv.VersionRef) {
	t.Helper()
	callCtx, cancel := withDeadline(ctx)
	defer cancel()
	stream, err := metadata.IterateFrames(callCtx, &fv.IterateFramesRequest{
		View: &fv.View{
			Selections: []*fv.ViewSelection{{Version: draft}},
			Order:      fv.IterationOrder_ITERATION_ORDER_SEQUENTIAL,
		},
		FramesPerMessage: 2,
	})
	if err != nil {
		t.Fatalf("IterateFrames: %v", err)
	}
	var frames []*fv.Frame
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("IterateFrames receive: %v", err)
		}
		if response.Cursor == "" {
			t.Errorf("IterateFrames message without a cursor")
		}
		frames = append(frames, response.Frames...)
	}
	var ids []string
	for i, frame := range frames {
		ids = append(ids, frame.Id)
		if i > 0 {
			previous := frames[i-1]
			if previous.ContextId > frame.ContextId ||
				(previous.ContextId == frame.ContextId && previous.Timestamp > frame.Timestamp) {
				t.Errorf("frame %s (%s@%d) after %s (%s@%d): not sequential order",
					frame.Id, frame.ContextId, frame.Timestamp, previous.Id, previous.ContextId, previous.Timestamp)
			}
		}
	}
	if !slices.Equal(ids, sequentialOrder) {
		t.Errorf("IterateFrames ids = %v, want %v", ids, sequentialOrder)
	}
}

// countWithReferenceQuery counts the frames of a query in the reference
// product's spellings, which the service reads as its own names.
func countWithReferenceQuery(ctx context.Context, t *testing.T, metadata fv.MetadataServiceClient, draft *fv.VersionRef) {
	t.Helper()
	callCtx, cancel := withDeadline(ctx)
	defer cancel()
	query := `label.keyword:"car" AND rois.confidence:[0.7 TO 1] AND metadata.client:"go" AND width:640`
	reply, err := metadata.CountViewFrames(callCtx, &fv.CountViewFramesRequest{
		View: &fv.View{Selections: []*fv.ViewSelection{{Version: draft, Query: query}}},
	})
	if err != nil {
		t.Fatalf("CountViewFrames(%s): %v", query, err)
	}
	// b-0066, a-0100 and b-0000 have a car with a confidence of at least 0.7.
	if reply.Count != 3 {
		t.Errorf("CountViewFrames(%s) = %d, want 3", query, reply.Count)
	}
}
