//! hubpack-placeholder-ctl: keeps placeholder pods and image pre-pull DaemonSets sized ahead
//! of predicted arrivals. Not implemented yet: this crate only reserves its place in the
//! workspace. The sizing it will carry out lives in hubpack-core.
