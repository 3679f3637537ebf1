-- Time series for forecasts: actuals, settings and predictions, in the
-- store's own database (no second one). Instants are Unix milliseconds.
CREATE TABLE series (
    name     text PRIMARY KEY,
    capacity real,
    unit     text,
    last_at  integer
);
CREATE TABLE series_points (
    series text    NOT NULL,
    at     integer NOT NULL,
    value  real    NOT NULL,
    PRIMARY KEY (series, at)
) WITHOUT ROWID;
CREATE INDEX series_points_at ON series_points (at);
CREATE TABLE series_predictions (
    series  text    NOT NULL,
    at      integer NOT NULL,
    value   real    NOT NULL,
    lower   real    NOT NULL,
    upper   real    NOT NULL,
    made_at integer NOT NULL,
    PRIMARY KEY (series, at)
) WITHOUT ROWID;
CREATE INDEX series_predictions_at ON series_predictions (at);
