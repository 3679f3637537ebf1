-- Time series for forecasts: actuals, settings and predictions, in the
-- store's own database (no second one).
CREATE TABLE series (
    name     text PRIMARY KEY,
    capacity double precision,
    unit     text,
    last_at  timestamptz
);
CREATE TABLE series_points (
    series text             NOT NULL,
    at     timestamptz      NOT NULL,
    value  double precision NOT NULL,
    PRIMARY KEY (series, at)
);
CREATE INDEX series_points_at ON series_points (at);
CREATE TABLE series_predictions (
    series  text             NOT NULL,
    at      timestamptz      NOT NULL,
    value   double precision NOT NULL,
    lower   double precision NOT NULL,
    upper   double precision NOT NULL,
    made_at timestamptz      NOT NULL,
    PRIMARY KEY (series, at)
);
CREATE INDEX series_predictions_at ON series_predictions (at);
