// The framevault.v1 messages, enums and gRPC clients (generated into ./gen by
// clients/generate.sh), plus the google.rpc error types their statuses carry.
export * from "./gen/framevault/v1/access";
export * from "./gen/framevault/v1/blob";
export * from "./gen/framevault/v1/dataset";
export * from "./gen/framevault/v1/frame";
export * from "./gen/framevault/v1/metadata";
export * from "./gen/framevault/v1/metadata_service";
export * from "./gen/framevault/v1/view";
// Every generated module declares these helpers and constants; re-exporting
// one module's copy resolves the clash (protobufFileName of other files is in
// their own modules under ./gen).
export {
  type DeepPartial,
  type Exact,
  type MessageFns,
  protobufFileName,
  protobufPackage,
} from "./gen/framevault/v1/metadata_service";
export { Status } from "./gen/google/rpc/status";
export {
  BadRequest,
  BadRequest_FieldViolation,
  ErrorInfo,
  PreconditionFailure,
  PreconditionFailure_Violation,
  ResourceInfo,
  RetryInfo,
} from "./gen/google/rpc/error_details";
