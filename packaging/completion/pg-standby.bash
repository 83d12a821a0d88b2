# bash completion for pg-standby(8)                          -*- shell-script -*-
# Completes commands, options and instance names: Debian clusters as
# VERSION-NAME (from /etc/postgresql), and directories.

_pg_standby_clusters()
{
    local root=${PG_CLUSTER_CONF_ROOT:-/etc/postgresql} d v
    for d in "$root"/*/*/; do
        [[ -d $d ]] || continue
        d=${d%/}
        v=${d%/*}
        printf '%s\n' "${v##*/}-${d##*/}"
    done
}

_pg_standby()
{
    local cur prev words cword
    _init_completion || return

    local commands="init run status list wait metrics resync patroni-replica condition postgres version help"
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi

    local opts
    case ${words[1]} in
    init)
        opts="--primary-conninfo --primary-conninfo-file --slot --create-slot --checkpoint --max-rate
              --tablespace-mapping --compress --direct-io --metrics-dir --port --pgdata --check"
        ;;
    run)
        opts="--pgdata --config-file --checkpoint --max-rate --manifest-checksums
              --tablespace-mapping --compress --direct-io --create-slot --retries
              --stall-timeout --verbose"
        ;;
    status | list) opts="--json" ;;
    wait) opts="--pgdata --for --timeout" ;;
    resync) opts="--pgdata --full" ;;
    metrics) opts="--pgdata" ;;
    *) opts="" ;;
    esac

    case $prev in
    --pgdata | --tablespace-mapping | --metrics-dir)
        _filedir -d
        return
        ;;
    --config-file)
        _filedir conf
        return
        ;;
    --primary-conninfo-file)
        _filedir
        return
        ;;
    --checkpoint)
        COMPREPLY=($(compgen -W "fast spread" -- "$cur"))
        return
        ;;
    --manifest-checksums)
        COMPREPLY=($(compgen -W "CRC32C SHA224 SHA256 SHA384 SHA512 NONE" -- "$cur"))
        return
        ;;
    --compress)
        COMPREPLY=($(compgen -W "gzip lz4 zstd none" -- "$cur"))
        return
        ;;
    --direct-io)
        COMPREPLY=($(compgen -W "on off" -- "$cur"))
        return
        ;;
    --primary-conninfo | --slot | --max-rate | --port | --retries | --stall-timeout)
        return
        ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case ${words[1]} in
    init | run | status | condition | postgres)
        if [[ $cur == /* ]]; then
            _filedir -d
        else
            COMPREPLY=($(compgen -W "$(_pg_standby_clusters)" -- "$cur"))
        fi
        ;;
    esac
} &&
    complete -F _pg_standby pg-standby

# ex: filetype=sh
