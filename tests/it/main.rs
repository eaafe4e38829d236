
mod correlation_quality;
