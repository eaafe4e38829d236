mod correlation_quality;
