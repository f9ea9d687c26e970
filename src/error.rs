//! Typed library errors. Every variant says what is wrong *and* what to do about it, because the
//! person reading it is a scientist at a terminal, not the author of the code.

use std::path::PathBuf;

/// Errors raised by the Surge library.
#[derive(Debug, thiserror::Error)]
pub enum SurgeError {
    /// A field of an experiment file has an impossible value.
    #[error("invalid experiment: `{field}`: {problem}. Fix: {fix}")]
    Spec {
        field: String,
        problem: String,
        fix: String,
    },
    /// The experiment file is not valid TOML or does not match the schema (unknown key, wrong type).
    #[error("cannot parse experiment file {path}: {message}")]
    Toml { path: String, message: String },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An HDF5 operation failed.
    #[error("HDF5 error on {path}: {message}")]
    Hdf5 { path: PathBuf, message: String },
    /// The training loss became NaN or infinite. `kept` says what is on disk: the checkpoint of an
    /// earlier epoch, or nothing (no epoch finished in this folder).
    #[error(
        "training diverged: the loss became {value} at epoch {epoch}, step {step}; training stopped. {kept}Fix: lower training.lr or training.clip_norm, check the data with `surge data info`, and start again (from a kept checkpoint: `surge train --init {dir}` with the lower rate)"
    )]
    TrainingDiverged {
        value: f64,
        epoch: usize,
        step: usize,
        dir: PathBuf,
        kept: String,
    },
    /// A dataset file is not what Surge expects (foreign, truncated, other version, bad values).
    #[error("dataset {path}: {problem}. Fix: {fix}")]
    Data {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// A figure could not be drawn or written.
    #[error("cannot draw figure {path}: {message}")]
    Plot { path: PathBuf, message: String },
    /// An output already exists and would be overwritten.
    #[error(
        "{path} already exists. Fix: choose another output path or pass --force to overwrite it"
    )]
    Exists { path: PathBuf },
    /// A trained quantity became NaN or infinite; the last saved state is kept.
    #[error("{what} became non-finite; nothing of this step was saved. Fix: {fix}")]
    NotFinite { what: String, fix: String },
    /// RLS lost the positive definiteness of its inverse correlation matrix.
    #[error(
        "RLS became unstable: the gain 1 / (1 + x.P x) was {c} at t = {t_ms} ms, so P is no longer positive definite; the weights of this loop are discarded and the last saved state is kept. Fix: raise the prior precisions (lambda, lambda_sum, lambda_ffwd) and resume"
    )]
    RlsUnstable { c: f64, t_ms: f64 },
    /// A simulation produced a non-finite value (usually a too large dt or weight).
    #[error(
        "simulation diverged: {what} became {value} at t = {t_ms} ms. Fix: reduce dt_ms or the synaptic weights"
    )]
    Diverged { what: String, value: f64, t_ms: f64 },
    /// A SONATA circuit that is malformed or holds what Surge cannot represent.
    #[error("SONATA input {path}: `{field}`: {problem}. Fix: {fix}")]
    Sonata {
        path: PathBuf,
        field: String,
        problem: String,
        fix: String,
    },
    /// A request that cannot be carried out as given (a missing or foreign input file, a folder
    /// that already holds a run, options that do not fit together).
    #[error("{problem}. Fix: {fix}")]
    Usage { problem: String, fix: String },
}

impl SurgeError {
    /// Shorthand for a spec validation error.
    pub fn spec(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        SurgeError::Spec {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn data(
        path: impl Into<PathBuf>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        SurgeError::Data {
            path: path.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SurgeError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn usage(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        SurgeError::Usage {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn hdf5(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        SurgeError::Hdf5 {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

/// Result alias for the library.
pub type Result<T> = std::result::Result<T, SurgeError>;
