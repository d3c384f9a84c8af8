// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// OpenGradient's inference precompile as their contracts declare it.
struct Number { int128 value; int128 decimals; }
struct NumberTensor { string name; Number[] values; uint32[] shape; }
struct StringTensor { string name; string[] values; }
struct JsonScalar { string name; string value; }
struct ModelInput { NumberTensor[] numbers; StringTensor[] strings; }
enum ModelInferenceMode { VANILLA, ZKML, TEE }
struct ModelInferenceRequest { ModelInferenceMode mode; string modelCID; ModelInput input; }
struct ModelOutput { NumberTensor[] numbers; StringTensor[] strings; JsonScalar[] jsons; bool is_simulation_result; }

interface OGInference {
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);
}

// The same function with the mode as a plain uint8 (the ABI is the same),
// for gradnet's QUORUM mode (3), which OpenGradient's enum lacks.
struct ModelRequest { uint8 mode; string modelCID; ModelInput input; }
interface Inference {
    function runModelInference(ModelRequest memory request) external returns (ModelOutput memory);
}

// Runs one model on a row of numbers (value * 10^-decimals each).
contract Classifier {
    OGInference constant OG = OGInference(0x00000000000000000000000000000000000000F4);
    string public model;

    int128[] lastOut;
    int128[] lastDecimals;
    bool lastSimulated;
    event Predicted(uint8 mode, int128[] out, int128[] outDecimals, bool simulated);

    constructor(string memory m) {
        model = m;
    }

    function row(int128[] memory values, int128 decimals) internal pure returns (ModelInput memory) {
        Number[] memory nums = new Number[](values.length);
        for (uint256 i = 0; i < values.length; i++) {
            nums[i] = Number(values[i], decimals);
        }
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = uint32(values.length);
        NumberTensor[] memory ts = new NumberTensor[](1);
        ts[0] = NumberTensor("x", nums, shape);
        return ModelInput(ts, new StringTensor[](0));
    }

    // In a transaction: the network's verified result, kept and logged.
    function predictAndStore(uint8 mode, int128[] memory values, int128 decimals) external {
        ModelOutput memory o = Inference(address(OG)).runModelInference(ModelRequest(mode, model, row(values, decimals)));
        Number[] memory r = o.numbers[0].values;
        delete lastOut;
        delete lastDecimals;
        for (uint256 i = 0; i < r.length; i++) {
            lastOut.push(r[i].value);
            lastDecimals.push(r[i].decimals);
        }
        lastSimulated = o.is_simulation_result;
        emit Predicted(mode, lastOut, lastDecimals, lastSimulated);
    }

    function last() external view returns (int128[] memory, int128[] memory, bool) {
        return (lastOut, lastDecimals, lastSimulated);
    }

    function predict(int128[] memory values, int128 decimals)
        external
        returns (int128[] memory out, int128[] memory outDecimals, bool simulated)
    {
        Number[] memory nums = new Number[](values.length);
        for (uint256 i = 0; i < values.length; i++) {
            nums[i] = Number(values[i], decimals);
        }
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = uint32(values.length);
        NumberTensor[] memory ts = new NumberTensor[](1);
        ts[0] = NumberTensor("x", nums, shape);
        ModelOutput memory o = OG.runModelInference(
            ModelInferenceRequest(ModelInferenceMode.VANILLA, model, ModelInput(ts, new StringTensor[](0)))
        );
        Number[] memory r = o.numbers[0].values;
        out = new int128[](r.length);
        outDecimals = new int128[](r.length);
        for (uint256 i = 0; i < r.length; i++) {
            out[i] = r[i].value;
            outDecimals[i] = r[i].decimals;
        }
        simulated = o.is_simulation_result;
    }
}
