//! Calendar conversion for the device's date fields (UTC; the emulator has no time-zone table).

/// Civil date and time of Unix seconds: (year, month, day, hour, minute, second).
pub fn civil(unix: u32) -> (u32, u8, u8, u8, u8, u8) {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil algorithm, restricted to dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u32::from(month <= 2);
    let b = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    (
        year,
        b(month),
        b(day),
        b(secs / 3600),
        b(secs / 60 % 60),
        b(secs % 60),
    )
}

/// The 5-byte FN date: year - 2000, month, day, hour, minute.
pub fn datetime5(unix: u32) -> [u8; 5] {
    let (y, mo, d, h, mi, _) = civil(unix);
    [
        u8::try_from(y.saturating_sub(2000)).unwrap_or(u8::MAX),
        mo,
        d,
        h,
        mi,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_436_418_698), (2015, 7, 9, 5, 11, 38));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(datetime5(1_700_000_000), [23, 11, 14, 22, 13]);
    }
}
