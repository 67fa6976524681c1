"""Report labels in English and Simplified Chinese (``lang='en' | 'zh'``)."""
from __future__ import annotations

LANGS = ("en", "zh")

T: dict[str, dict[str, str]] = {
    "title": {"en": "PoC report", "zh": "PoC 验证报告"},
    "generated": {"en": "Generated", "zh": "生成时间"},
    "run": {"en": "Run", "zh": "运行"},
    "contents": {"en": "Contents", "zh": "目录"},
    "summary": {"en": "Summary", "zh": "摘要"},
    "scope": {"en": "Scope and configuration", "zh": "范围与配置"},
    "data": {"en": "Data summary", "zh": "数据概况"},
    "detection": {"en": "Detection accuracy", "zh": "检测准确率"},
    "tracking": {"en": "Tracking accuracy", "zh": "跟踪准确率"},
    "events": {"en": "Event KPIs per rule", "zh": "各规则事件指标"},
    "performance": {"en": "Performance and sizing", "zh": "性能与选型"},
    "limitations": {"en": "Known limitations", "zh": "已知限制"},
    "acceptance": {"en": "PoC acceptance checklist", "zh": "PoC 验收清单"},
    "sources": {"en": "Sources", "zh": "视频源"},
    "source": {"en": "Source", "zh": "视频源"},
    "model": {"en": "Model", "zh": "模型"},
    "rules": {"en": "Rules", "zh": "规则"},
    "rule": {"en": "Rule", "zh": "规则"},
    "type": {"en": "Type", "zh": "类型"},
    "parameters": {"en": "Parameters", "zh": "参数"},
    "reference_frame": {"en": "Zones and lines on the camera view", "zh": "摄像机画面上的区域与线"},
    "no_reference": {"en": "no reference frame in the run", "zh": "运行目录中没有参考帧"},
    "frames": {"en": "Frames", "zh": "帧数"},
    "resolution": {"en": "Resolution", "zh": "分辨率"},
    "fps": {"en": "FPS", "zh": "帧率"},
    "duration": {"en": "Duration (s)", "zh": "时长 (秒)"},
    "tracks": {"en": "Tracks", "zh": "轨迹数"},
    "events_n": {"en": "Alarms", "zh": "告警数"},
    "status": {"en": "Status", "zh": "状态"},
    "metric": {"en": "Metric", "zh": "指标"},
    "value": {"en": "Value", "zh": "数值"},
    "class": {"en": "Class", "zh": "类别"},
    "gt": {"en": "Ground truth", "zh": "真值"},
    "pred": {"en": "Predicted", "zh": "预测"},
    "tp": {"en": "TP", "zh": "正确 (TP)"},
    "fp": {"en": "FP", "zh": "误报 (FP)"},
    "fn": {"en": "FN", "zh": "漏报 (FN)"},
    "precision": {"en": "Precision", "zh": "精确率"},
    "recall": {"en": "Recall", "zh": "召回率"},
    "f1": {"en": "F1", "zh": "F1"},
    "finetune": {"en": "Fine-tuning on the site's footage", "zh": "基于现场视频的微调"},
    "finetune_note": {"en": "Held-out frames that share no second of footage with training: the base model against "
                      "the fine-tuned one", "zh": "与训练数据不共享任何一秒视频的留出帧：基础模型与微调后模型对比"},
    "finetune_added": {"en": "classes added", "zh": "新增类别"},
    "images": {"en": "images", "zh": "张图像"},
    "before": {"en": "before", "zh": "微调前"},
    "after": {"en": "after", "zh": "微调后"},
    "fa_per_hour": {"en": "False alarms / hour", "zh": "每小时误报"},
    "latency": {"en": "Latency mean / p50 / p95 (s, alarm − truth; < 0: alarm earlier) *",
                "zh": "延迟 均值 / p50 / p95 (秒, 告警 − 真值; < 0: 告警更早) *"},
    "true_alarms": {"en": "True alarms", "zh": "正确告警"},
    "false_alarms": {"en": "False alarms", "zh": "误报"},
    "example_alarms": {"en": "Example alarms", "zh": "告警示例"},
    "missed": {"en": "Missed events", "zh": "漏报事件"},
    "no_gt": {"en": "No ground truth (annotated reference) was provided for this footage: accuracy was not measured.",
              "zh": "本视频未提供真值（人工标注参考），未测量准确率。"},
    "no_events": {"en": "The run raised no alarm.", "zh": "本次运行没有产生告警。"},
    "unfinished": {"en": "The run did not finish cleanly ({why}): the numbers below are reconstructed from "
                         "config.yaml, events.jsonl and the tracks written before it stopped; timings and "
                         "throughput are not available.",
                   "zh": "本次运行未正常结束（{why}）：以下数字由 config.yaml、events.jsonl 和停止前写出的轨迹重建；"
                         "无耗时与吞吐数据。"},
    "torn_events": {"en": "{file}: {n} incomplete last line(s) skipped (the run stopped while writing an event).",
                    "zh": "{file}：跳过 {n} 行不完整的末行（运行在写入事件时中断）。"},
    "gt_events_derived": {"en": "Ground-truth events derived by replaying the rules on ground-truth tracks.",
                          "zh": "真值事件由规则在真值轨迹上回放得到。"},
    "gt_span_boxes": {"en": "{span} is what the run analysed: ground truth is scored on it only ({n} ground-truth "
                            "boxes outside it are not counted).",
                      "zh": "{span} 为本次运行分析的范围：真值仅在此范围内评分（范围外 {n} 个真值框不计入）。"},
    "gt_span_events": {"en": "{span} is what the run analysed: {inside} ground-truth event(s) lie in it and are scored; "
                             "{outside} lie outside it and are not counted.",
                       "zh": "{span} 为本次运行分析的范围：其中 {inside} 个真值事件参与评分；范围外 {outside} 个不计入。"},
    "tolerance": {"en": "Matching tolerance (s)", "zh": "匹配时间容差 (秒)"},
    "footage_hours": {"en": "Footage analysed", "zh": "分析的视频时长"},
    "to_confirm": {"en": "to confirm", "zh": "待确认"},
    "n_pass": {"en": "pass", "zh": "通过"},
    "n_fail": {"en": "fail", "zh": "未通过"},
    "count_in": {"en": "{n} in {footage}", "zh": "{footage} 内 {n} 次"},
    "rate_note": {"en": "Rates per hour are shown only from at least {min} of footage; with {footage} analysed "
                        "the table gives the count and the footage instead.",
                  "zh": "仅在视频时长至少 {min} 时给出每小时比率；本次分析 {footage}，表中给出次数与时长。"},
    "latency_note": {"en": "Latency = alarm time minus the ground-truth moment. A negative value means the alarm "
                           "came before the reference moment: e.g. the rule fired on the first frame of the run "
                           "for an object already in place, or the truth is dated later within the matching "
                           "tolerance.",
                     "zh": "延迟 = 告警时间减去真值时刻。负值表示告警早于参考时刻：例如对象在运行开始时已在区域内，"
                           "规则在第一帧即触发，或真值时刻在匹配容差内更晚。"},
    "stage": {"en": "Stage", "zh": "阶段"},
    "mean_ms": {"en": "Mean (ms)", "zh": "均值 (毫秒)"},
    "p50_ms": {"en": "p50 (ms)", "zh": "p50 (毫秒)"},
    "p95_ms": {"en": "p95 (ms)", "zh": "p95 (毫秒)"},
    "throughput": {"en": "End-to-end throughput", "zh": "端到端吞吐"},
    "wall": {"en": "Wall time (s)", "zh": "总耗时 (秒)"},
    "host": {"en": "Measured on", "zh": "测试机器"},
    "bench": {"en": "Benchmark: streams per machine", "zh": "基准测试：单机路数"},
    "no_bench": {"en": "No benchmark was run for this PoC: throughput per number of streams and sizing were not "
                       "measured.",
                 "zh": "本次 PoC 未进行基准测试：未测量多路吞吐与选型。"},
    "batch": {"en": "Batch", "zh": "批大小"},
    "streams": {"en": "Streams", "zh": "路数"},
    "fps_stream": {"en": "FPS / stream", "zh": "每路帧率"},
    "device": {"en": "Device", "zh": "设备"},
    "kind": {"en": "Kind", "zh": "性质"},
    "limiting": {"en": "Limiting stage", "zh": "瓶颈阶段"},
    "conditions": {"en": "Conditions", "zh": "条件"},
    "measured": {"en": "MEASURED", "zh": "实测"},
    "estimate": {"en": "ESTIMATE", "zh": "估算"},
    "below_one": {"en": "BELOW ONE STREAM", "zh": "不足一路"},
    "below_one_note": {"en": "one stream reaches {fps} fps, below the {target} fps it needs",
                       "zh": "单路仅达 {fps} fps，低于所需的 {target} fps"},
    "not_sized": {"en": "NOT SIZED", "zh": "未测算"},
    "estimate_missing": {"en": "NO ESTIMATE", "zh": "无估算"},
    "estimate_absent": {"en": "requested, but bench.json holds no estimate for it",
                        "zh": "已请求，但 bench.json 中没有该估算"},
    "bench_other_config": {"en": "bench.json was measured with config '{bench}', not this run's '{run}': its sizing "
                                 "may not apply (re-run pockit bench with this config).",
                           "zh": "bench.json 使用配置 '{bench}' 测得，而非本次运行的 '{run}'：其容量测算可能不适用"
                                 "（请用本配置重新运行 pockit bench）。"},
    "bench_other_res": {"en": "bench.json was measured at {bench}, this run's sources are {run}: its throughput and "
                              "sizing are for the other resolution.",
                        "zh": "bench.json 在 {bench} 下测得，本次运行的视频源为 {run}：其吞吐与容量测算对应另一分辨率。"},
    "estimate_note": {"en": "Estimates are scaled from published device figures, not measured.",
                      "zh": "估算值根据公开的设备参数换算，并非实测。"},
    "item": {"en": "Item", "zh": "项目"},
    "category": {"en": "Category", "zh": "类别"},
    "criterion": {"en": "Criterion", "zh": "标准"},
    "measured_value": {"en": "Measured", "zh": "实测值"},
    "result": {"en": "Result", "zh": "结果"},
    "pass": {"en": "PASS", "zh": "通过"},
    "fail": {"en": "FAIL", "zh": "未通过"},
    "no_data": {"en": "NO DATA", "zh": "无数据"},
    "manual": {"en": "TO CONFIRM", "zh": "待确认"},
    "cat_function": {"en": "Function", "zh": "功能"},
    "cat_performance": {"en": "Performance", "zh": "性能"},
    "cat_api": {"en": "API", "zh": "接口"},
    "cat_documentation": {"en": "Documentation", "zh": "文档"},
    "confirmed": {"en": "confirmed by the engineer", "zh": "已由工程师确认"},
    "signature": {"en": "Customer signature / date", "zh": "客户签字 / 日期"},
    "vendor_signature": {"en": "Vendor signature / date", "zh": "供应商签字 / 日期"},
    "no_acceptance": {"en": "No acceptance criteria were agreed for this PoC.",
                      "zh": "本次 PoC 未约定验收标准。"},
    "not_measured": {"en": "not measured in this PoC", "zh": "本次 PoC 未测量"},
    "no_threshold": {"en": "no threshold agreed", "zh": "未约定阈值"},
    # cover block
    "cover": {"en": "PoC details", "zh": "PoC 信息"},
    "customer": {"en": "Customer", "zh": "客户"},
    "site": {"en": "Site", "zh": "现场"},
    "poc_dates": {"en": "PoC dates", "zh": "PoC 日期"},
    "poc_scope": {"en": "Scope", "zh": "范围"},
    "boxes": {"en": "Edge boxes", "zh": "边缘设备"},
    "cameras": {"en": "Cameras", "zh": "摄像机"},
    "signatories": {"en": "Signatures", "zh": "签字"},
    "person": {"en": "Name", "zh": "姓名"},
    "role": {"en": "Role", "zh": "职务"},
    "organisation": {"en": "Organisation", "zh": "单位"},
    "sign": {"en": "Signature", "zh": "签字"},
    "date": {"en": "Date", "zh": "日期"},
    "customer_rep": {"en": "Customer representative", "zh": "客户代表"},
    "vendor_rep": {"en": "Vendor representative", "zh": "供应商代表"},
    # executive summary
    "exec_summary": {"en": "Executive summary", "zh": "执行摘要"},
    "exec_dates": {"en": "PoC from {start} to {end}.", "zh": "PoC 时间 {start} 至 {end}。"},
    "exec_date": {"en": "PoC on {start}.", "zh": "PoC 日期 {start}。"},
    "colon": {"en": ": ", "zh": "："},
    "full_stop": {"en": ".", "zh": "。"},
    "exec_analysed": {"en": "{footage} of video from {cameras} camera(s) on {boxes} edge box(es) was analysed "
                            "({frames} frames).",
                      "zh": "共分析 {boxes} 台边缘设备上 {cameras} 路摄像机的 {footage} 视频（{frames} 帧）。"},
    "exec_alarms": {"en": "{n} alarm(s) were raised by {rules} rule(s); each is listed below with its time, camera "
                          "and snapshot.",
                    "zh": "{rules} 条规则共产生 {n} 个告警；下文逐一列出其时间、摄像机与截图。"},
    "exec_accuracy": {"en": "Against the ground truth, the alarms had a precision of {p} and a recall of {r} "
                            "({tp} true, {fp} false, {fn} missed).",
                      "zh": "与真值对比，告警精确率 {p}，召回率 {r}（正确 {tp}，误报 {fp}，漏报 {fn}）。"},
    "exec_no_gt": {"en": "No ground truth was provided: the alarms were not scored as true or false.",
                   "zh": "未提供真值：告警未判定正误。"},
    "exec_acceptance": {"en": "Acceptance: {pass} of {total} criteria passed, {fail} failed, {to_confirm} to "
                              "confirm.",
                        "zh": "验收：{total} 项中 {pass} 项通过，{fail} 项未通过，{to_confirm} 项待确认。"},
    "exec_perf": {"en": "Throughput: {fps} frames/s on {host}.", "zh": "吞吐：{fps} 帧/秒（{host}）。"},
    "exec_perf_nohost": {"en": "Throughput: {fps} frames/s.", "zh": "吞吐：{fps} 帧/秒。"},
    # site totals and the alarm list
    "site_totals": {"en": "Site totals", "zh": "现场汇总"},
    "boxes_n": {"en": "boxes", "zh": "个框"},
    "exec_collected": {"en": "{n} alarm(s) from {cameras} camera(s) on {boxes} edge box(es) were collected "
                             "centrally.",
                       "zh": "集中收集了 {boxes} 台边缘设备上 {cameras} 路摄像机的 {n} 个告警。"},
    "box": {"en": "Box", "zh": "设备"},
    "per_camera": {"en": "Per camera", "zh": "各摄像机"},
    "alarm_list": {"en": "Every alarm", "zh": "全部告警"},
    "timeline_title": {"en": "Alarms over time, per camera", "zh": "各摄像机告警时间线"},
    "timeline_axis": {"en": "time in the footage (s)", "zh": "视频内时间 (秒)"},
    "timeline_axis_min": {"en": "time in the footage (min)", "zh": "视频内时间 (分钟)"},
    "timeline_note": {"en": "One row per camera, one colour per rule; a cross is a false alarm, an open circle a "
                            "missed event (with ground truth).",
                      "zh": "每行一路摄像机，每种颜色一条规则；叉号为误报，空心圆为漏报（有真值时）。"},
    "event_id": {"en": "Alarm id", "zh": "告警编号"},
    "time": {"en": "Time", "zh": "时间"},
    "camera": {"en": "Camera", "zh": "摄像机"},
    "snapshot": {"en": "Snapshot", "zh": "截图"},
    "clip": {"en": "Clip", "zh": "视频片段"},
    "verdict": {"en": "Verdict", "zh": "判定"},
    "v_tp": {"en": "true alarm", "zh": "正确告警"},
    "v_fp": {"en": "false alarm", "zh": "误报"},
    "clip_left_out": {"en": "clip too large to embed", "zh": "视频片段过大，未嵌入"},
    "clip_print": {"en": "video in the HTML report", "zh": "视频见 HTML 报告"},
    # machine
    "machine": {"en": "Machine that ran the analysis", "zh": "运行分析的机器"},
    "machine_cpu": {"en": "CPU", "zh": "CPU"},
    "machine_gpu": {"en": "GPU", "zh": "GPU"},
    "machine_jetson": {"en": "Jetson module", "zh": "Jetson 模组"},
    "machine_memory": {"en": "Memory", "zh": "内存"},
    "machine_os": {"en": "Operating system", "zh": "操作系统"},
    "machine_unknown": {"en": "The run did not record its machine.", "zh": "本次运行未记录机器信息。"},
    "host_unknown": {"en": "the machine that ran it (not recorded)", "zh": "运行机器（未记录）"},
    "not_recorded": {"en": "not recorded", "zh": "未记录"},
    "warnings": {"en": "Notes", "zh": "说明"},
    "map50": {"en": "mAP@0.5", "zh": "mAP@0.5"},
    "map50_95": {"en": "mAP@0.5:0.95", "zh": "mAP@0.5:0.95"},
    "operating_point": {"en": "at the operating threshold", "zh": "工作阈值下"},
    "det_on_tracks": {"en": "Measured on the run's tracked boxes (tracks/<source>.txt) against the annotation.",
                      "zh": "基于运行输出的跟踪框（tracks/<source>.txt）与标注对比测量。"},
    "pr_title": {"en": "Precision-recall (IoU 0.5)", "zh": "精确率-召回率曲线 (IoU 0.5)"},
    "cm_title": {"en": "Confusion matrix", "zh": "混淆矩阵"},
    "predicted": {"en": "Predicted", "zh": "预测"},
    "actual": {"en": "Ground truth", "zh": "真值"},
    "background": {"en": "background", "zh": "背景"},
    "hota_title": {"en": "HOTA components vs localisation threshold", "zh": "HOTA 各分量随定位阈值变化"},
    "alpha": {"en": "IoU threshold alpha", "zh": "IoU 阈值 alpha"},
    "counts_title": {"en": "Alarms per rule", "zh": "各规则告警数"},
    "latency_title": {"en": "Alarm latency", "zh": "告警延迟"},
    "latency_axis": {"en": "latency (s, alarm - truth)", "zh": "延迟 (秒, 告警 - 真值)"},
    "stage_title": {"en": "Per-stage latency (ms per frame)", "zh": "各阶段延迟 (毫秒/帧)"},
    "tracking_expl": {
        "en": "HOTA balances detection and association; MOTA counts misses, false positives and identity "
              "switches; IDF1 measures how long each person keeps one identity. MT/ML: people tracked for "
              "more than 80% / less than 20% of their presence.",
        "zh": "HOTA 综合衡量检测与关联；MOTA 统计漏检、误检和身份切换；IDF1 衡量每个目标保持同一身份的程度。"
              "MT/ML：被跟踪时间超过 80% / 少于 20% 的目标数。"},
    "limits": {"en": "Limitations of this evaluation", "zh": "本次评估的局限"},
    "version": {"en": "Software versions", "zh": "软件版本"},
    "config_name": {"en": "PoC", "zh": "项目"},
    "description": {"en": "Description", "zh": "描述"},
    "none": {"en": "none", "zh": "无"},
}

LIMITATIONS: dict[str, list[str]] = {
    "en": [
        ("Accuracy figures hold for the footage evaluated ({footage}); other cameras, seasons, lighting or "
        "crowd density can change them. Re-measure on footage from each deployment site."),
        "The footage evaluated is short: one more or one fewer alarm changes the rates noticeably.",
        ("Detection accuracy is measured on confirmed tracks, not raw detector output: boxes the tracker "
        "has not yet confirmed count as misses."),
        ("Event ground truth derived by replaying the rules on annotated tracks inherits the rules' "
        "geometry: it measures the detector and tracker, not whether the zones match the customer's intent."),
        ("Performance was measured on {host}; other hardware differs. Device estimates are scaled from "
        "published figures and must be confirmed on the target device."),
    ],
    "zh": [
        "准确率仅适用于所评估的视频（{footage}）；其他摄像机、季节、光照或人群密度可能改变结果。请在每个部署现场的视频上重新测量。",
        "所评估的视频较短：多一个或少一个告警都会明显改变比率。",
        "检测准确率基于已确认的轨迹而非检测器原始输出：尚未被跟踪器确认的目标计为漏检。",
        "通过在标注轨迹上回放规则得到的真值事件继承了规则的几何设置：它衡量的是检测与跟踪，而非区域设置是否符合客户意图。",
        "性能测量于 {host}；其他硬件会有差异。设备估算值根据公开参数换算，须在目标设备上确认。",
    ],
}


def translator(lang: str):
    """A function key -> label in ``lang`` (falls back to English, then to the key)."""
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}; choose one of {LANGS}")

    def t(key: str) -> str:
        entry = T.get(key)
        if entry is None:
            return key
        return entry.get(lang) or entry["en"]

    return t
