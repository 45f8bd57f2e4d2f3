//! The messages and the server trait generated from `proto/pubsub_api.proto` (package
//! `eventbus.v1`) by the build script.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("eventbus.v1");
