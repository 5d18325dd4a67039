//! The registers an adapter drives: `--kkt ID=PORT[,baud=N][,password=N][,auto_open_shift=BOOL]`
//! (repeatable), `[[kkt]]` tables in the file, or the one-register shorthand `--kkt-port` (id
//! `default`). `--kkt-baud`, `--kkt-password` and `--auto-open-shift` are the defaults of every
//! register that does not set its own.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::journal::DEFAULT_KKT_ID;

/// Longest register id: it travels in URLs, log lines and every journal row.
pub const KKT_ID_CHARS_MAX: usize = 32;

/// One register as the command line or the file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KktSetting {
    pub id: String,
    pub port: PathBuf,
    #[serde(default)]
    pub baud: Option<u32>,
    #[serde(default)]
    pub password: Option<u32>,
    #[serde(default)]
    pub auto_open_shift: Option<bool>,
}

impl FromStr for KktSetting {
    type Err = String;

    /// `ID=PORT[,baud=N][,password=N][,auto_open_shift=BOOL]`.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.split(',');
        let head = parts.next().unwrap_or_default();
        let (id, port) = head
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected ID=PORT[,baud=N][,password=N]"))?;
        let mut setting = KktSetting {
            id: id.trim().to_owned(),
            port: PathBuf::from(port.trim()),
            baud: None,
            password: None,
            auto_open_shift: None,
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` in `{text}`: expected KEY=VALUE"))?;
            let number = |what: &str| {
                value
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{what} `{value}` in `{text}` is not a whole number"))
            };
            match key.trim() {
                "baud" => setting.baud = Some(number("baud")?),
                "password" => setting.password = Some(number("password")?),
                "auto_open_shift" => {
                    setting.auto_open_shift = Some(value.trim().parse().map_err(|_| {
                        format!("auto_open_shift `{value}` in `{text}` is not true or false")
                    })?)
                }
                other => {
                    return Err(format!(
                        "unknown key `{other}` in `{text}` (known: baud, password, auto_open_shift)"
                    ));
                }
            }
        }
        Ok(setting)
    }
}

/// One register, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KktSpec {
    /// Stable name of the register (`default` for `--kkt-port`).
    pub id: String,
    /// Its serial port.
    pub port: PathBuf,
    /// Line speed.
    pub baud: u32,
    /// Operator password of its commands.
    pub password: u32,
    /// Open the shift on the first sale when it is closed.
    pub auto_open_shift: bool,
}

/// The settings that shape the register list.
#[derive(Debug, Default)]
pub struct RegisterSettings {
    pub kkt: Option<Vec<KktSetting>>,
    pub kkt_port: Option<PathBuf>,
    pub kkt_baud: Option<u32>,
    pub kkt_password: Option<u32>,
    pub auto_open_shift: Option<bool>,
}

fn check_id(id: &str) -> Result<(), ConfigError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || id.chars().count() > KKT_ID_CHARS_MAX || !id.chars().all(ok_char) {
        return Err(invalid(
            "kkt",
            format!(
                "register id `{id}`: use 1 to {KKT_ID_CHARS_MAX} characters of A-Z, a-z, 0-9, `-` and `_`"
            ),
        ));
    }
    Ok(())
}

/// The registers of the configuration, in the order given.
pub fn resolve(s: RegisterSettings) -> Result<Vec<KktSpec>, ConfigError> {
    let baud = s.kkt_baud.unwrap_or(115_200);
    if baud == 0 {
        return Err(invalid("kkt_baud", "must be greater than zero"));
    }
    let password = s.kkt_password.unwrap_or(30);
    let auto_open_shift = s.auto_open_shift.unwrap_or(true);
    let list = s.kkt.unwrap_or_default();
    if list.is_empty() {
        return Ok(vec![KktSpec {
            id: DEFAULT_KKT_ID.to_owned(),
            port: s.kkt_port.unwrap_or_else(|| PathBuf::from("./kkt.tty")),
            baud,
            password,
            auto_open_shift,
        }]);
    }
    if s.kkt_port.is_some() {
        return Err(invalid(
            "kkt",
            "give the registers either with `kkt` (--kkt ID=PORT, [[kkt]]) or with `kkt_port`, not both",
        ));
    }
    let mut specs: Vec<KktSpec> = Vec::with_capacity(list.len());
    for k in list {
        check_id(&k.id)?;
        if k.port.as_os_str().is_empty() {
            return Err(invalid("kkt", format!("register `{}` has no port", k.id)));
        }
        if let Some(other) = specs.iter().find(|o| o.id == k.id) {
            return Err(invalid(
                "kkt",
                format!("register id `{}` is given twice", other.id),
            ));
        }
        let same_port = |a: &PathBuf, b: &PathBuf| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        if let Some(other) = specs.iter().find(|o| same_port(&o.port, &k.port)) {
            return Err(invalid(
                "kkt",
                format!(
                    "registers `{}` and `{}` are both on {}; one port drives one register",
                    other.id,
                    k.id,
                    k.port.display()
                ),
            ));
        }
        let baud = k.baud.unwrap_or(baud);
        if baud == 0 {
            return Err(invalid(
                "kkt",
                format!("register `{}`: baud must be greater than zero", k.id),
            ));
        }
        specs.push(KktSpec {
            id: k.id,
            port: k.port,
            baud,
            password: k.password.unwrap_or(password),
            auto_open_shift: k.auto_open_shift.unwrap_or(auto_open_shift),
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kkt(list: &[&str]) -> RegisterSettings {
        RegisterSettings {
            kkt: Some(list.iter().map(|s| s.parse().unwrap()).collect()),
            ..RegisterSettings::default()
        }
    }

    fn refused(s: RegisterSettings) -> String {
        resolve(s).unwrap_err().to_string()
    }

    #[test]
    fn the_shorthand_is_one_register_named_default() {
        let specs = resolve(RegisterSettings {
            kkt_port: Some("/dev/ttyACM0".into()),
            kkt_baud: Some(57_600),
            ..RegisterSettings::default()
        })
        .unwrap();
        assert_eq!(
            specs,
            [KktSpec {
                id: "default".into(),
                port: "/dev/ttyACM0".into(),
                baud: 57_600,
                password: 30,
                auto_open_shift: true,
            }]
        );
    }

    #[test]
    fn each_register_takes_its_own_settings_over_the_shared_defaults() {
        let mut s = kkt(&[
            "till-1=/dev/ttyACM0",
            "till_2=/dev/ttyACM1,baud=9600,password=1,auto_open_shift=false",
        ]);
        s.kkt_password = Some(7);
        let specs = resolve(s).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            (specs[0].id.as_str(), specs[0].baud, specs[0].password),
            ("till-1", 115_200, 7)
        );
        assert_eq!(
            (specs[1].baud, specs[1].password, specs[1].auto_open_shift),
            (9_600, 1, false)
        );
    }

    #[test]
    fn bad_register_lists_are_refused_naming_what_is_wrong() {
        assert!(refused(kkt(&["a=/dev/x", "a=/dev/y"])).contains("`a` is given twice"));
        assert!(refused(kkt(&["a=/dev/x", "b=/dev/x"])).contains("`a` and `b` are both on /dev/x"));
        assert!(refused(kkt(&["till 1=/dev/x"])).contains("register id `till 1`"));
        assert!(refused(kkt(&[&format!("{}=/dev/x", "k".repeat(33))])).contains("1 to 32"));
        assert!(refused(kkt(&["a=/dev/x,baud=0"])).contains("baud must be greater than zero"));
        let mut both = kkt(&["a=/dev/x"]);
        both.kkt_port = Some("/dev/y".into());
        assert!(refused(both).contains("not both"));
        for text in [
            "a",
            "a=/dev/x,speed=9600",
            "a=/dev/x,baud=fast",
            "a=/dev/x,baud",
        ] {
            assert!(text.parse::<KktSetting>().is_err(), "{text}");
        }
        assert!(refused(kkt(&["=/dev/x"])).contains("register id ``"));
    }

    #[test]
    fn kkt_tables_in_the_file_give_the_same_registers() {
        let file: crate::config::FileSettings = toml::from_str(
            "[[kkt]]\nid = \"till-1\"\nport = \"/dev/kkt1\"\n\n\
             [[kkt]]\nid = \"till-2\"\nport = \"/dev/kkt2\"\nbaud = 9600\n",
        )
        .unwrap();
        let specs = resolve(RegisterSettings {
            kkt: file.kkt,
            ..RegisterSettings::default()
        })
        .unwrap();
        assert_eq!(
            specs
                .iter()
                .map(|k| (k.id.as_str(), k.baud))
                .collect::<Vec<_>>(),
            [("till-1", 115_200), ("till-2", 9_600)]
        );
        let unknown = toml::from_str::<crate::config::FileSettings>(
            "[[kkt]]\nid = \"a\"\nport = \"/dev/a\"\nspeed = 1\n",
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn registers_on_the_command_line_replace_the_files_shorthand() {
        let flags = crate::config::FileSettings {
            kkt: Some(vec!["till-1=/dev/kkt1".parse().unwrap()]),
            ..Default::default()
        };
        let file = crate::config::FileSettings {
            kkt_port: Some("/dev/ttyACM0".into()),
            ..Default::default()
        };
        let config = crate::config::Config::from_settings(flags.or(file)).unwrap();
        assert_eq!(config.kkts.len(), 1);
        assert_eq!(config.kkts[0].id, "till-1");
    }
}
